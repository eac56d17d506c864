"""REST APIs of dataset exports: queue one (data managers, de-duplicated), its status, its
zip. One ``APIView`` per operation with nested input/output serializers and one service call.
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
from accounts.roles import DATA_MANAGER
from cases import storage
from core.api import FallbackContentNegotiation
from inference.exports import selectors as export_selectors
from inference.exports import services as export_services
from inference.models import ExportJob, JobStatus
from strokeaid_site.errors import ConflictError

IsDataManager = role_required(DATA_MANAGER)


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
        jobs = export_selectors.export_list(limit=50)
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
        job = export_selectors.export_get(export_id=export_id)
        return Response(ExportOutputSerializer(job).data)


class ExportDownloadApi(APIView):
    """``GET /api/exports/{id}/download/``: the zip (409 until the export is done)."""

    error_statuses = (409,)
    permission_classes = [IsDataManager]
    content_negotiation_class = FallbackContentNegotiation

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request: Request, export_id: int) -> HttpResponseBase:
        job = export_selectors.export_get(export_id=export_id)
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
