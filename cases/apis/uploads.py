"""Upload APIs: ``POST /api/cases/{id}/uploads/`` and ``GET /api/uploads/{job}/``.

Multipart with one or more ``files`` (DICOM files, zips of them, ``.nii``/``.nii.gz``) and an
optional ``kind`` (required for NIfTI). ``201 {"series": [...], "skipped": [...]}`` when
ingested at once; ``202 {"job": id, "status"}`` for uploads above ``ASYNC_UPLOAD_BYTES``.
A rejected upload is ``400`` (``413`` too large) ``{"message", "extra": {"file", ...}}``
and stores nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from cases.models import Series, UploadJob
from cases.selectors import case_get_for_user, upload_job_get_for_user
from cases.serializers import SeriesOutputSerializer
from cases.services.upload import UploadResult, upload_inputs_from_files, upload_start
from core.api import HasAnyRole


def upload_job_payload(job: UploadJob) -> dict[str, Any]:
    """The job as ``GET /api/uploads/{job}/`` shows it."""
    series = list(job.series.all()) if job.status == UploadJob.Status.DONE else []
    return {
        "id": job.pk,
        "job": job.pk,
        "case": job.case_id,
        "status": job.status,
        "progress": job.progress,
        "series": SeriesOutputSerializer(series, many=True).data,
        "error": job.error,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


class CaseUploadApi(APIView):
    """``POST /api/cases/{id}/uploads/``: ingest DICOM / zip / NIfTI into the case."""

    permission_classes = [HasAnyRole]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        files = serializers.ListField(
            child=serializers.FileField(allow_empty_file=True), allow_empty=True
        )
        kind = serializers.ChoiceField(
            choices=Series.Kind.choices, required=False, allow_blank=True
        )

    @extend_schema(
        request={"multipart/form-data": InputSerializer},
        responses={
            201: inline_serializer(
                "UploadCreated",
                {
                    "series": SeriesOutputSerializer(many=True),
                    "skipped": serializers.ListField(child=serializers.DictField()),
                },
            ),
            202: inline_serializer(
                "UploadQueued",
                {"job": serializers.IntegerField(), "status": serializers.CharField()},
            ),
        },
    )
    def post(self, request: Request, case_id: int) -> Response:
        case = case_get_for_user(user=request.user, case_id=case_id, for_write=True)
        files = request.FILES.getlist("files")
        # Kinds are matched whatever their case ("flair" is FLAIR), as scripts write them.
        kind = request.POST.get("kind", "").strip().upper()
        data = self.InputSerializer(data={"files": files, "kind": kind})
        data.is_valid(raise_exception=True)
        result = upload_start(
            user=request_user(request),
            case=case,
            inputs=upload_inputs_from_files(files),
            kind=data.validated_data.get("kind") or None,
        )
        if isinstance(result, UploadResult):
            return Response(
                {
                    "series": SeriesOutputSerializer(result.series, many=True).data,
                    "skipped": result.skipped,
                },
                status=status.HTTP_201_CREATED,
            )
        return Response(
            {"job": result.pk, "status": result.status}, status=status.HTTP_202_ACCEPTED
        )


class UploadJobDetailApi(APIView):
    """``GET /api/uploads/{job}/``: status, progress, series (when done) and error."""

    permission_classes = [HasAnyRole]

    @extend_schema(
        responses=inline_serializer(
            "UploadJob",
            {
                "id": serializers.IntegerField(),
                "case": serializers.IntegerField(),
                "status": serializers.CharField(),
                "progress": serializers.FloatField(),
                "series": SeriesOutputSerializer(many=True),
                "error": serializers.DictField(allow_null=True),
            },
        )
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = upload_job_get_for_user(user=request.user, job_id=job_id)
        return Response(upload_job_payload(job))
