"""DICOMweb STOW-RS: ``POST /dicomweb/studies`` and ``POST /dicomweb/studies/{study}``.

Body ``multipart/related; type="application/dicom"``, one DICOM instance per part. The
studies it holds are ingested at once into new cases (same path as the C-STORE listener).
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
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.auth import request_user
from cases.selectors import case_can_create
from core.api import FallbackContentNegotiation, HasAnyRole
from gateway.dicomweb import multipart_parts, stow_ingest
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, ForbiddenError, TooLargeError


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

    @extend_schema(
        request={"multipart/related": OpenApiTypes.BINARY}, responses=OpenApiTypes.OBJECT
    )
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
