"""REST APIs of issue 5: exports, annotator agreement and consensus, case-review actions.

One ``APIView`` per write operation with nested input/output serializers and one service call.
"""

from __future__ import annotations

import io
from typing import Any

from django.http import FileResponse, HttpResponseBase
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from accounts.permissions import role_required
from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER
from cases import storage
from cases.selectors import series_get_for_user
from core.api import FallbackContentNegotiation
from inference.models import ExportJob, JobStatus
from inference.services import agreement as agreement_services
from inference.services import export as export_services
from inference.services import review as review_services
from strokeaid_site.errors import ConflictError, NotFoundError

IsDataManager = role_required(DATA_MANAGER)
IsReviewer = role_required(REVIEWER)
IsNeurologist = role_required(NEUROLOGIST)
ReviewRoles = role_required(NEUROLOGIST, REVIEWER, DATA_MANAGER)


# --- exports --------------------------------------------------------------------------------
def export_get_for_user(*, user: Any, export_id: int) -> ExportJob:
    """Data managers see every export (the permission class already required the role)."""
    job = ExportJob.objects.filter(pk=export_id).first()
    if job is None:
        raise NotFoundError(_("Export not found."), {"export": export_id})
    return job


class ExportOutputSerializer(serializers.ModelSerializer[ExportJob]):
    download_url = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    cases = serializers.JSONField(source="case_ids")

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "status",
            "progress",
            "format",
            "cases",
            "filters",
            "download_url",
            "sha256",
            "result_bytes",
            "snapshot",
            "error",
            "created_at",
            "finished_at",
        ]

    def get_download_url(self, obj: ExportJob) -> str | None:
        if obj.status != JobStatus.DONE or not obj.result_key:
            return None
        return reverse("inference-api:export-download", args=[obj.pk])

    def get_error(self, obj: ExportJob) -> str | None:
        return obj.error or None


class ExportListApi(APIView):
    """``POST /api/exports/`` (queue an export, 202) and ``GET`` (recent exports)."""

    permission_classes = [IsDataManager]

    class InputSerializer(serializers.Serializer[Any]):
        format = serializers.ChoiceField(choices=ExportJob.Format.values)
        cases = serializers.ListField(
            child=serializers.IntegerField(min_value=1),
            allow_null=True,
            required=False,
            allow_empty=False,
        )
        filters = serializers.DictField(required=False, default=dict)

    @extend_schema(responses=ExportOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        jobs = ExportJob.objects.order_by("-created_at", "-id")[:50]
        return Response(ExportOutputSerializer(jobs, many=True).data)

    @extend_schema(request=InputSerializer, responses={202: ExportOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        job, _created = export_services.export_request(
            user=request_user(request),
            format=values["format"],
            case_ids=values.get("cases"),
            filters=values.get("filters") or {},
        )
        job.refresh_from_db()
        return Response(ExportOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportDetailApi(APIView):
    """``GET /api/exports/{id}/`` → status, progress, download URL, error."""

    permission_classes = [IsDataManager]

    @extend_schema(responses=ExportOutputSerializer)
    def get(self, request: Request, export_id: int) -> Response:
        job = export_get_for_user(user=request.user, export_id=export_id)
        return Response(ExportOutputSerializer(job).data)


class ExportDownloadApi(APIView):
    """``GET /api/exports/{id}/download/``: the zip (409 until the export is done)."""

    error_statuses = (409,)
    permission_classes = [IsDataManager]
    content_negotiation_class = FallbackContentNegotiation

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, export_id: int) -> HttpResponseBase:
        job = export_get_for_user(user=request.user, export_id=export_id)
        if job.status != JobStatus.DONE or not storage.exists(job.result_key):
            raise ConflictError(
                _("The export is not ready (status: %(status)s).") % {"status": job.status},
                {"status": job.status},
            )
        path = storage.local_path(job.result_key)
        handle = (
            path.open("rb") if path is not None else io.BytesIO(storage.read_bytes(job.result_key))
        )
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=export_services.export_download_name(job),
            content_type="application/zip",
        )
        response["X-Checksum-SHA256"] = job.sha256
        return response


# --- agreement and consensus ----------------------------------------------------------------
class SeriesAgreementApi(APIView):
    """``GET /api/series/{id}/agreement/``: pairwise Dice per label and etiology kappas."""

    permission_classes = [ReviewRoles]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        return Response(agreement_services.series_agreement(series=series))


class SeriesConsensusApi(APIView):
    """``POST /api/series/{id}/consensus/`` ``{"method": "pick"|"majority", "annotation"}``."""

    permission_classes = [IsReviewer]

    class InputSerializer(serializers.Serializer[Any]):
        method = serializers.ChoiceField(choices=agreement_services.CONSENSUS_METHODS)
        annotation = serializers.IntegerField(required=False, allow_null=True)
        annotations = serializers.ListField(
            child=serializers.IntegerField(), required=False, allow_null=True
        )

    class OutputSerializer(serializers.Serializer[Any]):
        id = serializers.IntegerField()
        state = serializers.CharField()
        revision = serializers.IntegerField(source="revision_count")
        is_consensus = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        annotation = agreement_services.consensus_create(
            user=request_user(request),
            series=series,
            method=values["method"],
            annotation_id=values.get("annotation"),
            annotation_ids=values.get("annotations"),
        )
        return Response(self.OutputSerializer(annotation).data, status=status.HTTP_201_CREATED)


# --- case review actions --------------------------------------------------------------------
class SeriesReviewApi(APIView):
    """``GET /api/series/{id}/review/``: the per-case numbers (annotation vs prediction)."""

    permission_classes = [ReviewRoles]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        pair = review_services.review_pair_get(
            series=series,
            annotation_id=_int(request.query_params.get("annotation")),
            prediction_id=_int(request.query_params.get("prediction")),
        )
        return Response(review_services.case_review_numbers(pair=pair))


class PredictionAcceptApi(APIView):
    """``POST /api/series/{id}/review/accept/`` ``{"prediction": id}``: the prediction becomes
    the caller's draft annotation (a new revision of their mask)."""

    permission_classes = [IsNeurologist]

    class InputSerializer(serializers.Serializer[Any]):
        prediction = serializers.IntegerField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = review_services.prediction_accept_as_draft(
            user=request_user(request),
            series=series,
            prediction_id=data.validated_data.get("prediction"),
        )
        return Response(
            {
                "annotation": annotation.pk,
                "state": annotation.state,
                "revision": annotation.revision_count,
            },
            status=status.HTTP_201_CREATED,
        )


class PredictionFlagApi(APIView):
    """``POST /api/series/{id}/review/flag/`` ``{"prediction": id, "comment"}``."""

    permission_classes = [ReviewRoles]

    class InputSerializer(serializers.Serializer[Any]):
        prediction = serializers.IntegerField(required=False, allow_null=True)
        comment = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_for_user(user=request.user, series_id=series_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = review_services.prediction_flag(
            user=request_user(request),
            series=series,
            prediction_id=data.validated_data.get("prediction"),
            comment=data.validated_data["comment"],
        )
        return Response({"flag": event.pk}, status=status.HTTP_201_CREATED)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
