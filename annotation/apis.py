"""REST APIs of the annotation app: masks (NIfTI and the editor's raw form), revisions, review.

Mask routes (see ``annotation.maskio`` for the raw form):

* ``GET|PUT /api/series/{id}/mask.nii.gz`` and ``GET|PUT /api/series/{id}/mask.raw``: the
  caller's own mask on the series. ``GET`` answers the current revision with its ``ETag``
  (404 before the first save). ``PUT`` stores a new revision: no ``If-Match`` for the first
  save, then ``If-Match: <etag>`` (missing: 428, stale: 412, nothing overwritten).
* ``GET /api/annotations/{id}/mask.raw|mask.nii.gz[?revision=n]``: any visible annotation.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.auth import request_user
from cases.models import Series
from cases.selectors import case_get_for_user, series_get_for_user
from core.api import FallbackContentNegotiation, HasAnyRole
from strokeaid_site.errors import ApplicationError, NotFoundError, TooLargeError

from . import maskio, selectors, services
from .models import Annotation, AnnotationRevision
from .serializers import (
    AnnotationOutputSerializer,
    CommentInputSerializer,
    LabellingInputSerializer,
    RevisionOutputSerializer,
    SaveOutputSerializer,
)

MASK_CACHE = "private, no-cache"


class _BinaryParser(BaseParser):
    """Declares binary bodies for the schema; the views read the stream themselves."""

    media_type = "application/octet-stream"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        return stream


class _NiftiParser(_BinaryParser):
    media_type = "*/*"


def _read_body(request: Request, *, limit: int) -> bytes:
    """The request body, refused above ``limit`` bytes (read once from the stream, no copy
    through Django's form parsing, which would also cap it at DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    length = int(request.headers.get("Content-Length") or 0)
    if length > limit:
        raise TooLargeError(_("The mask is too large."), {"limit": limit, "received": length})
    data = request._request.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(_("The mask is too large."), {"limit": limit})
    if not data:
        raise ApplicationError(_("The request has no body."), {})
    return data


def _save_response(revision: AnnotationRevision) -> Response:
    annotation = revision.annotation
    body = SaveOutputSerializer(
        {
            "annotation": annotation.pk,
            "etag": annotation.etag,
            "state": annotation.state,
            "revision": revision,
        }
    ).data
    response = Response(body)
    response["ETag"] = str(annotation.etag)
    response["Access-Control-Expose-Headers"] = "ETag"
    return response


def _mask_response(
    request: Request,
    *,
    series: Series,
    annotation: Annotation,
    revision: AnnotationRevision,
    fmt: str,
) -> HttpResponse:
    array = selectors.mask_array(revision=revision, mmap=True)
    if fmt == "nifti":
        response = HttpResponse(
            maskio.mask_to_nifti_bytes(series=series, array=array), content_type="application/gzip"
        )
        name = f"{series.case.code}_{series.kind}_mask_a{annotation.pk}_r{revision.number}.nii.gz"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        data = array.tobytes()
        # Label volumes are mostly background: gzip level 1 shrinks them ~100x in a few ms.
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            packer = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            data = packer.compress(data) + packer.flush()
            response = HttpResponse(data, content_type="application/octet-stream")
            response["Content-Encoding"] = "gzip"
        else:
            response = HttpResponse(data, content_type="application/octet-stream")
        response["X-Shape"] = ",".join(str(int(n)) for n in series.shape)
        response["X-Dtype"] = "uint8"
        response["Content-Length"] = str(len(data))
    if revision.pk == annotation.current_revision_id:
        response["ETag"] = str(annotation.etag)
    response["X-Revision"] = str(revision.number)
    response["Cache-Control"] = MASK_CACHE
    response["Access-Control-Expose-Headers"] = "ETag, X-Shape, X-Dtype, X-Revision"
    return response


class _SeriesMaskApi(APIView):
    """The caller's own mask on a series (GET current, PUT a new revision)."""

    error_statuses = (412, 428)

    permission_classes = [HasAnyRole]
    content_negotiation_class = FallbackContentNegotiation
    fmt = "raw"
    source: str = AnnotationRevision.Source.EDITOR

    def _own(self, request: Request, series: Series) -> Annotation:
        annotation = selectors.annotation_own(user=request.user, series=series)
        if annotation is None or annotation.current_revision is None:
            raise NotFoundError(_("You have no mask on this series yet."), {"series": series.pk})
        return annotation

    def get(self, request: Request, series_id: int) -> HttpResponse:
        series = series_get_for_user(user=request.user, series_id=series_id)
        annotation = self._own(request, series)
        revision = annotation.current_revision
        assert revision is not None  # _own() refuses annotations without a saved mask
        return _mask_response(
            request, series=series, annotation=annotation, revision=revision, fmt=self.fmt
        )

    def _decode(self, request: Request, series: Series) -> Any:
        raise NotImplementedError

    def put(self, request: Request, series_id: int) -> Response:
        started = time.perf_counter()
        series = series_get_for_user(user=request.user, series_id=series_id)
        array = self._decode(request, series)
        revision = services.mask_save(
            user=request_user(request),
            series=series,
            array=array,
            if_match=request.headers.get("If-Match"),
            source=self.source,
            note=request.headers.get("X-Revision-Note", "")[:500],
        )
        response = _save_response(revision)
        # The server's share of the editor's save round trip (read by bench/editor.py).
        response["Server-Timing"] = f"save;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response


class SeriesMaskRawApi(_SeriesMaskApi):
    """``GET|PUT /api/series/{id}/mask.raw``: the editor's binary form (uint8, z*y*x bytes,
    C order, optional ``Content-Encoding: gzip``)."""

    parser_classes = [_BinaryParser]
    fmt = "raw"
    source = AnnotationRevision.Source.EDITOR

    def _decode(self, request: Request, series: Series) -> Any:
        expected = 1
        for n in series.shape:
            expected *= int(n)
        # gzip never grows a body by more than ~0.1 % (stored blocks), so 1 % + 1 KiB is ample.
        body = _read_body(request, limit=expected + expected // 100 + 1024)
        gzipped = request.headers.get("Content-Encoding", "").lower() == "gzip"
        return maskio.mask_decode_raw(series=series, body=body, gzipped=gzipped)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, series_id: int) -> HttpResponse:
        return super().get(request, series_id)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses=SaveOutputSerializer,
    )
    def put(self, request: Request, series_id: int) -> Response:
        return super().put(request, series_id)


class SeriesMaskNiftiApi(_SeriesMaskApi):
    """``GET|PUT /api/series/{id}/mask.nii.gz``: the caller's mask as a NIfTI label volume."""

    parser_classes = [_NiftiParser]
    fmt = "nifti"
    source = AnnotationRevision.Source.API

    def _decode(self, request: Request, series: Series) -> Any:
        # A gzip body is smaller than what it holds; an uncompressed one at most that size.
        body = _read_body(request, limit=maskio.nifti_max_bytes(series))
        return maskio.mask_decode_nifti(series=series, body=body)

    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
    def get(self, request: Request, series_id: int) -> HttpResponse:
        return super().get(request, series_id)

    @extend_schema(
        request={"application/gzip": OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses=SaveOutputSerializer,
    )
    def put(self, request: Request, series_id: int) -> Response:
        return super().put(request, series_id)


class SeriesAnnotationListApi(generics.ListAPIView[Annotation]):
    """``GET /api/series/{id}/annotations/``: every annotator's mask on it, with its state."""

    permission_classes = [HasAnyRole]
    serializer_class = AnnotationOutputSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[Annotation]:
        series = series_get_for_user(user=self.request.user, series_id=self.kwargs["series_id"])
        return selectors.annotation_list_for_series(series=series)


class AnnotationDetailApi(generics.RetrieveAPIView[Annotation]):
    """``GET /api/annotations/{id}/``."""

    permission_classes = [HasAnyRole]
    serializer_class = AnnotationOutputSerializer

    def get_object(self) -> Annotation:
        return selectors.annotation_get_for_user(
            user=self.request.user, annotation_id=self.kwargs["annotation_id"]
        )


class AnnotationRevisionListApi(generics.ListAPIView[AnnotationRevision]):
    """``GET /api/annotations/{id}/revisions/``: newest first."""

    permission_classes = [HasAnyRole]
    serializer_class = RevisionOutputSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[AnnotationRevision]:
        annotation = selectors.annotation_get_for_user(
            user=self.request.user, annotation_id=self.kwargs["annotation_id"]
        )
        return selectors.annotation_revisions(annotation=annotation)


class _AnnotationMaskApi(APIView):
    permission_classes = [HasAnyRole]
    content_negotiation_class = FallbackContentNegotiation
    fmt = "raw"

    @extend_schema(
        parameters=[OpenApiParameter("revision", int, description="Default: the current one.")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, annotation_id: int) -> HttpResponse:
        annotation = selectors.annotation_get_for_user(
            user=request.user, annotation_id=annotation_id
        )
        raw = request.query_params.get("revision")
        if raw not in (None, "") and not str(raw).isdigit():
            raise ApplicationError(_("Expected a revision number."), {"field": "revision"})
        revision = selectors.annotation_revision_get(
            annotation=annotation, number=int(raw) if raw else None
        )
        return _mask_response(
            request,
            series=annotation.series,
            annotation=annotation,
            revision=revision,
            fmt=self.fmt,
        )


class AnnotationMaskRawApi(_AnnotationMaskApi):
    """``GET /api/annotations/{id}/mask.raw[?revision=n]``: any visible annotation's mask."""

    fmt = "raw"


class AnnotationMaskNiftiApi(_AnnotationMaskApi):
    """``GET /api/annotations/{id}/mask.nii.gz[?revision=n]``."""

    fmt = "nifti"


class AnnotationRestoreApi(APIView):
    """``POST /api/annotations/{id}/revisions/{n}/restore/``: revision n becomes current
    again as a new revision (``If-Match`` optional, checked when sent)."""

    error_statuses = (412,)

    permission_classes = [HasAnyRole]

    @extend_schema(request=None, responses=SaveOutputSerializer)
    def post(self, request: Request, annotation_id: int, number: int) -> Response:
        annotation = selectors.annotation_get_for_user(
            user=request.user, annotation_id=annotation_id
        )
        revision = services.annotation_revision_restore(
            user=request_user(request),
            annotation=annotation,
            number=number,
            if_match=request.headers.get("If-Match"),
        )
        return _save_response(revision)


class _TransitionApi(APIView):
    error_statuses = (412,)
    permission_classes = [HasAnyRole]

    def _run(self, request: Request, annotation: Annotation, comment: str) -> Annotation:
        raise NotImplementedError

    @extend_schema(
        request=CommentInputSerializer,
        responses=AnnotationOutputSerializer,
        parameters=[
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                description="approve/return: the ETag of the reviewed revision (stale: 412)",
            )
        ],
    )
    def post(self, request: Request, annotation_id: int) -> Response:
        data = CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        annotation = selectors.annotation_get_for_user(
            user=request.user, annotation_id=annotation_id
        )
        self._run(request, annotation, data.validated_data["comment"])
        annotation = selectors.annotation_get_for_user(
            user=request.user, annotation_id=annotation_id
        )
        return Response(AnnotationOutputSerializer(annotation).data)


class AnnotationSubmitApi(_TransitionApi):
    """``POST /api/annotations/{id}/submit/``: draft or returned → submitted."""

    def _run(self, request: Request, annotation: Annotation, comment: str) -> Annotation:
        return services.annotation_submit(user=request_user(request), annotation=annotation)


class AnnotationApproveApi(_TransitionApi):
    """``POST /api/annotations/{id}/approve/`` ``{"comment"}`` (optional): submitted → approved."""

    def _run(self, request: Request, annotation: Annotation, comment: str) -> Annotation:
        return services.annotation_approve(
            user=request_user(request),
            annotation=annotation,
            comment=comment,
            if_match=request.headers.get("If-Match"),
        )


class AnnotationReturnApi(_TransitionApi):
    """``POST /api/annotations/{id}/return/`` ``{"comment"}`` (required): submitted → returned."""

    def _run(self, request: Request, annotation: Annotation, comment: str) -> Annotation:
        return services.annotation_return(
            user=request_user(request),
            annotation=annotation,
            comment=comment,
            if_match=request.headers.get("If-Match"),
        )


class CaseLabellingApi(APIView):
    """``POST /api/cases/{id}/labelling/`` ``{"etiology", "confirmed", "note"}`` (any subset):
    the editor's case labelling (neurologists)."""

    permission_classes = [HasAnyRole]

    @extend_schema(request=LabellingInputSerializer, responses=LabellingInputSerializer)
    def post(self, request: Request, case_id: int) -> Response:
        data = LabellingInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = case_get_for_user(user=request.user, case_id=case_id)
        case = services.case_labelling_update(
            user=request_user(request), case=case, data=dict(data.validated_data)
        )
        return Response(
            {
                "etiology": case.etiology.name if case.etiology else None,
                "confirmed": case.confirmed,
                "note": case.note,
                "status": case.status,
            }
        )
