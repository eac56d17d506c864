"""DICOMweb into the platform: STOW-RS (``POST /dicomweb/studies[/{study}]``) and the
"Import from PACS" REST routes (``/api/pacs/studies/``, ``/api/pacs/imports/``).

STOW-RS: a ``multipart/related; type="application/dicom"`` body, one DICOM instance per
part. The studies it holds are ingested at once into new cases (same path as the C-STORE listener).
The answer is PS3.18's: a DICOM JSON dataset (``application/dicom+json``) with the stored
instances (``ReferencedSOPSequence``) and the failed ones with their reason
(``FailedSOPSequence``); ``200`` all stored, ``202`` some failed, ``409`` none stored,
``415`` another media type. Authenticated like the REST API (token or session), by a role
that may create cases.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from cases.selectors import case_can_create
from core.api import FallbackContentNegotiation, HasAnyRole
from gateway.dicomweb import (
    SEARCH_KEYS,
    multipart_parts,
    pacs_import_request,
    pacs_search,
    stow_ingest,
)
from gateway.models import PacsImport
from gateway.selectors import pacs_import_get_for_user
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError, TooLargeError


class _MultipartRelatedParser(BaseParser):
    """Declares the body for the schema; the view reads the stream itself."""

    media_type = "multipart/related"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream


class StowApi(APIView):
    """``POST /dicomweb/studies[/{study}]``: store instances (STOW-RS)."""

    permission_classes = [HasAnyRole]
    parser_classes = [_MultipartRelatedParser]
    content_negotiation_class = FallbackContentNegotiation

    # DICOMweb is PS3.18's interface (multipart/related in, DICOM JSON out), documented in the
    # README beside the REST routes; it stays out of the REST API's OpenAPI schema.
    @extend_schema(exclude=True)
    def post(self, request: Request, study_uid: str | None = None) -> HttpResponse:
        if not case_can_create(user=request.user):
            raise ForbiddenError(_("Your role may not create cases."))
        content_type = request.META.get("CONTENT_TYPE", "")
        if not content_type.lower().startswith("multipart/related"):
            return JsonResponse(
                {
                    "message": _('Send multipart/related; type="application/dicom".'),
                    "extra": {"content_type": content_type},
                },
                status=415,
            )
        limit = int(app_settings.MAX_UPLOAD_BYTES)
        if int(request.headers.get("Content-Length") or 0) > limit:
            raise TooLargeError(_("The request is too large."), {"limit": limit})
        body = request._request.read(limit + 1)
        if len(body) > limit:
            raise TooLargeError(_("The request is too large."), {"limit": limit})
        parts = multipart_parts(content_type, body)
        if not parts:
            raise ApplicationError(_("The request holds no DICOM instance."), {})
        result = stow_ingest(user=request_user(request), parts=parts, study_uid=study_uid)
        return JsonResponse(
            result.response(),
            status=result.http_status,
            content_type="application/dicom+json",
        )


class StowStudyApi(StowApi):
    """``POST /dicomweb/studies/{study}``: store instances of that study only."""

    @extend_schema(exclude=True)
    def post(self, request: Request, study_uid: str | None = None) -> HttpResponse:
        return super().post(request, study_uid=study_uid)


def _may_import(request: Request) -> None:
    if not case_can_create(user=request.user):
        raise ForbiddenError(_("Your role may not create cases."))


def pacs_import_payload(job: PacsImport) -> dict[str, Any]:
    """An import as ``GET /api/pacs/imports/{id}/`` shows it (no UID of the study)."""
    case = job.received.case if job.received is not None else None
    return {
        "id": job.pk,
        "status": job.status,
        "progress": job.progress,
        "expected": job.expected,
        "retrieved": job.retrieved,
        "case": case.pk if case is not None else None,
        "case_code": case.code if case is not None else None,
        "error": job.error,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


class PacsStudySearchApi(APIView):
    """``GET /api/pacs/studies/?patient_id=&accession=&date=&modality=``: QIDO-RS search of
    the configured PACS (``409`` when none is configured or it cannot be reached)."""

    permission_classes = [HasAnyRole]

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, required=False)
            for name in ("patient_id", "accession", "date", "modality")
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        _may_import(request)
        filters = {key: request.query_params.get(key, "") for key in SEARCH_KEYS}
        return Response({"results": pacs_search(filters=filters)})


class PacsImportListApi(APIView):
    """``POST /api/pacs/imports/ {"study_uid"}``: pull a study into a new case (``202``)."""

    permission_classes = [HasAnyRole]

    class InputSerializer(serializers.Serializer):  # type: ignore[type-arg]
        study_uid = serializers.CharField(max_length=64)

    @extend_schema(request=InputSerializer, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        _may_import(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job, _created = pacs_import_request(
            user=request_user(request), study_uid=data.validated_data["study_uid"]
        )
        return Response(pacs_import_payload(job), status=status.HTTP_202_ACCEPTED)


class PacsImportDetailApi(APIView):
    """``GET /api/pacs/imports/{id}/``: status, progress and, when done, the case."""

    permission_classes = [HasAnyRole]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, job_id: int) -> Response:
        job = pacs_import_get_for_user(user=request_user(request), job_id=job_id)
        if job is None:
            raise NotFoundError(_("No such import."), {"id": job_id})
        return Response(pacs_import_payload(job))
