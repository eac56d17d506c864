"""Serializers of the annotation API (output shapes and small inputs)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Annotation, AnnotationRevision


class RevisionOutputSerializer(serializers.ModelSerializer[AnnotationRevision]):
    created_by = serializers.SerializerMethodField()
    total_ml = serializers.FloatField(read_only=True)

    class Meta:
        model = AnnotationRevision
        fields = [
            "number",
            "created_at",
            "created_by",
            "source",
            "label_counts",
            "volumes_ml",
            "total_ml",
            "restored_from",
            "note",
            "sha256",
        ]

    def get_created_by(self, obj: AnnotationRevision) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None


class AnnotationOutputSerializer(serializers.ModelSerializer[Annotation]):
    series = serializers.IntegerField(source="series_id")
    case = serializers.IntegerField(source="series.case_id")
    kind = serializers.CharField(source="series.kind")
    annotator = serializers.SerializerMethodField()
    reviewer = serializers.SerializerMethodField()
    etag = serializers.CharField(read_only=True, allow_null=True)
    revision = serializers.SerializerMethodField()

    class Meta:
        model = Annotation
        fields = [
            "id",
            "series",
            "case",
            "kind",
            "annotator",
            "is_consensus",
            "state",
            "revision_count",
            "etag",
            "revision",
            "reviewer",
            "review_comment",
            "submitted_at",
            "reviewed_at",
            "updated_at",
        ]

    def get_annotator(self, obj: Annotation) -> dict[str, Any] | None:
        if obj.annotator is None:
            return None
        return {"id": obj.annotator.pk, "username": obj.annotator.get_username()}

    def get_reviewer(self, obj: Annotation) -> str | None:
        return obj.reviewer.get_username() if obj.reviewer else None

    def get_revision(self, obj: Annotation) -> dict[str, Any] | None:
        if obj.current_revision is None:
            return None
        return RevisionOutputSerializer(obj.current_revision).data


class SaveOutputSerializer(serializers.Serializer[Any]):
    annotation = serializers.IntegerField()
    etag = serializers.CharField()
    state = serializers.CharField()
    revision = RevisionOutputSerializer()


class CommentInputSerializer(serializers.Serializer[Any]):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class LabellingInputSerializer(serializers.Serializer[Any]):
    etiology = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    confirmed = serializers.BooleanField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=20000)
