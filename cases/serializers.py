"""Output serializers shared by the cases APIs (and reused by other apps that embed a case)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from cases.models import Case, Label, Series

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class LabelOutputSerializer(serializers.ModelSerializer[Label]):
    """``{"value", "name", "color", "title"}``; ``title`` is in the request's language."""

    title = serializers.CharField(read_only=True)

    class Meta:
        model = Label
        fields = ["value", "name", "color", "title"]


class CaseOutputSerializer(serializers.ModelSerializer[Case]):
    """A case as the public contract shows it (etiology by label name)."""

    etiology: serializers.SlugRelatedField[Label] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True
    )
    created_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    series_count = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "code",
            "etiology",
            "confirmed",
            "status",
            "note",
            "created_by",
            "created_at",
            "updated_at",
            "series_count",
        ]

    def get_series_count(self, case: Case) -> int:
        # Annotated by the selectors; a freshly created case has none yet.
        count: Any = getattr(case, "series_count", None)
        return int(count) if count is not None else case.series.count()


class SeriesOutputSerializer(serializers.ModelSerializer[Series]):
    """A series' geometry and display defaults; arrays are (z, y, x), affine is 4x4."""

    dtype = serializers.CharField(source="volume.dtype", read_only=True)
    display = serializers.SerializerMethodField()

    class Meta:
        model = Series
        fields = [
            "id",
            "case",
            "study",
            "kind",
            "source",
            "series_uid",
            "description",
            "shape",
            "spacing",
            "affine",
            "window_center",
            "window_width",
            "quarantined",
            "quarantine_reason",
            "header",
            "dtype",
            "display",
            "created_at",
        ]

    def get_display(self, obj: Series) -> dict[str, Any]:
        """How slices are shown (radiological convention): flip, then turn clockwise; the
        patient direction of each image edge. PNG slices come out this way; raw voxels and
        masks stay in stored order."""
        return obj.display.as_dict()
