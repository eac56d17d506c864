"""Series APIs: metadata, the volume as NIfTI, and the viewer's slice and raw-voxel endpoints.

Raw voxel format (``GET /api/series/{id}/volume.raw`` and ``.../slices/{z}.raw``)
--------------------------------------------------------------------------------
The body is the bare voxel array, ``Content-Type: application/octet-stream``, little-endian,
C order (x fastest), no prefix and no compression (on a LAN a 25x256x256 int16 volume is
3.3 MB; compressing it costs more time than it saves). Response headers describe it:

* ``X-Shape``: the body's shape, comma-separated: ``z,y,x`` for the volume, ``y,x`` for a
  slice;
* ``X-Dtype``: ``int16`` when every voxel is an integer in the int16 range, else ``float32``;
* ``X-Spacing``: voxel spacing ``z,y,x`` in mm;
* ``X-Window``: default window ``center,width``;
* ``X-Value-Range``: ``min,max`` of the whole volume;
* ``X-Slice`` (slices only): the slice index ``z``.

Row 0 of a slice is the top of the displayed image, column 0 its left edge (patient's right,
radiological convention, as in the DICOM stack). The files never change once stored: the
``ETag`` derives from the volume's SHA-256 (and ``z``), ``Cache-Control`` is ``private,
max-age=31536000, immutable`` and a matching ``If-None-Match`` answers ``304``.
"""

from __future__ import annotations

import math

from django.http import HttpResponse, HttpResponseBase
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.views import APIView

from cases import rendering
from cases.models import Series
from cases.selectors import series_get_for_user
from cases.serializers import SeriesOutputSerializer
from core.api import FallbackContentNegotiation, HasAnyRole
from core.auth_cache import (
    AUTH_CACHE_SECONDS,
    CachedTokenAuthentication,
    TtlCache,
    auth_caches_clear,
    roles_prime,
)
from strokeaid_site.errors import ApplicationError, NotFoundError

IMMUTABLE = "private, max-age=31536000, immutable"
NIFTI_CACHE = "private, max-age=3600"


def etag_matches(request: Request, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (weak or strong) or ``*``."""
    header = request.headers.get("If-None-Match", "")
    if not header:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag in candidates or "*" in candidates


def not_modified(etag: str, cache_control: str) -> HttpResponse:
    response = HttpResponse(status=304)
    response["ETag"] = etag
    response["Cache-Control"] = cache_control
    return response


def png_etag(series: Series, z: int, center: float, width: float, size: int | None) -> str:
    """The PNG slice's ETag: the volume's hash, the slice, the window, the size and the
    display orientation (``r<rotation><h|-><v|->``: PNGs are shown radiologically)."""
    d = series.display
    turn = f"r{d.rotation}{'h' if d.hflip else '-'}{'v' if d.vflip else '-'}"
    return f'"{series.volume.sha256[:32]}-z{z}-{center:g}-{width:g}-{size or 0}-{turn}"'


def _check_z(series: Series, z: int) -> None:
    if not 0 <= z < int(series.shape[0]):
        raise NotFoundError(
            _("Slice index out of range."), {"z": z, "slices": int(series.shape[0])}
        )


def _float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ApplicationError(_("Expected a number."), {"field": name, "value": raw})
    return value


def _csv(values: list[float] | list[int] | tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _raw_headers(response: HttpResponse, series: Series, etag: str) -> None:
    volume = series.volume
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE
    response["X-Spacing"] = _csv([float(s) for s in series.spacing])
    response["X-Window"] = _csv([float(series.window_center), float(series.window_width)])
    response["X-Value-Range"] = _csv([float(volume.min_value), float(volume.max_value)])
    response["Access-Control-Expose-Headers"] = (
        "ETag, X-Shape, X-Dtype, X-Spacing, X-Window, X-Value-Range, X-Slice"
    )


class SeriesDetailApi(generics.RetrieveAPIView[Series]):
    """``GET /api/series/{id}/``: geometry, header summary and display defaults."""

    permission_classes = [HasAnyRole]
    serializer_class = SeriesOutputSerializer

    def get_object(self) -> Series:
        return series_get_for_user(user=self.request.user, series_id=self.kwargs["series_id"])


#: ``(user id, series id) -> Series`` the user was found allowed to see (read by the ASGI
#: fast path too).
visible_series_cache = TtlCache(ttl=AUTH_CACHE_SECONDS)


class _FileApi(APIView):
    """Base of the file endpoints: the hot path of viewers, editors and thumbnail grids.

    Token, roles and series visibility are remembered for ``AUTH_CACHE_SECONDS`` per process,
    so a cached slice costs no query at all (a volume never changes once stored).
    """

    permission_classes = [HasAnyRole]
    authentication_classes = [CachedTokenAuthentication, SessionAuthentication]
    content_negotiation_class = FallbackContentNegotiation

    def perform_authentication(self, request: Request) -> None:
        roles_prime(request.user)

    def series_for(self, request: Request, series_id: int) -> Series:
        key = (request.user.pk, series_id)
        series = visible_series_cache.get(key)
        if series is None:
            series = series_get_for_user(user=request.user, series_id=series_id)
            visible_series_cache.put(key, series)
        return series


def file_caches_clear() -> None:
    """Forgets remembered tokens, roles and series visibility (tests)."""
    visible_series_cache.clear()
    auth_caches_clear()


class SeriesVolumeNiftiApi(_FileApi):
    """``GET /api/series/{id}/volume.nii.gz``: NIfTI-1 (x, y, z) with the series' affine."""

    @extend_schema(responses={(200, "application/gzip"): OpenApiTypes.BINARY})
    def get(self, request: Request, series_id: int) -> HttpResponseBase:
        series = self.series_for(request, series_id)
        etag = f'"{series.volume.sha256}"'
        if etag_matches(request, etag):
            return not_modified(etag, NIFTI_CACHE)
        response = HttpResponse(rendering.volume_nifti_gz(series), content_type="application/gzip")
        name = f"{series.case.code}_{series.kind}_{series.pk}.nii.gz"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["ETag"] = etag
        response["Cache-Control"] = NIFTI_CACHE
        return response


class SeriesVolumeRawApi(_FileApi):
    """``GET /api/series/{id}/volume.raw``: the whole volume, raw (see the module docstring)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, series_id: int) -> HttpResponseBase:
        series = self.series_for(request, series_id)
        etag = f'"{series.volume.sha256[:32]}-raw"'
        if etag_matches(request, etag):
            return not_modified(etag, IMMUTABLE)
        data, dtype = rendering.volume_raw(series)
        response = HttpResponse(data, content_type="application/octet-stream")
        _raw_headers(response, series, etag)
        response["X-Shape"] = _csv([int(n) for n in series.shape])
        response["X-Dtype"] = dtype.name
        response["Content-Length"] = str(len(data))
        return response


class SeriesSliceRawApi(_FileApi):
    """``GET /api/series/{id}/slices/{z}.raw``: one slice (y, x), raw (module docstring)."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, series_id: int, z: int) -> HttpResponseBase:
        series = self.series_for(request, series_id)
        _check_z(series, z)
        etag = f'"{series.volume.sha256[:32]}-z{z}-raw"'
        if etag_matches(request, etag):
            return not_modified(etag, IMMUTABLE)
        data, dtype = rendering.slice_raw(series, z)
        response = HttpResponse(data, content_type="application/octet-stream")
        _raw_headers(response, series, etag)
        response["X-Shape"] = _csv([int(n) for n in series.shape[1:]])
        response["X-Dtype"] = dtype.name
        response["X-Slice"] = str(z)
        response["Content-Length"] = str(len(data))
        return response


class SeriesSlicePngApi(_FileApi):
    """``GET /api/series/{id}/slices/{z}.png?wc=&ww=&size=``: one slice windowed to 8 bits,
    shown in the radiological convention (the series' ``display``: flipped and turned from the
    stored order when the file stored its voxels otherwise).

    ``wc``/``ww``: window centre and width (default: the series' window); ``size``: longest
    edge of a downscaled thumbnail, 8..1024 (never upscaled).
    """

    @extend_schema(
        parameters=[
            OpenApiParameter("wc", float, description="Window centre."),
            OpenApiParameter("ww", float, description="Window width (> 0)."),
            OpenApiParameter("size", int, description="Thumbnail longest edge (8..1024)."),
        ],
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    def get(self, request: Request, series_id: int, z: int) -> HttpResponseBase:
        center = _float_param(request, "wc")
        width = _float_param(request, "ww")
        if width is not None and width <= 0:
            raise ApplicationError(_("The window width must be positive."), {"field": "ww"})
        size_raw = request.query_params.get("size") or None
        size: int | None = None
        if size_raw is not None:
            if not size_raw.isdigit() or not 8 <= int(size_raw) <= rendering.MAX_THUMBNAIL:
                raise ApplicationError(
                    _("The thumbnail size must be a whole number from 8 to 1024."),
                    {"field": "size", "value": size_raw},
                )
            size = int(size_raw)
        series = self.series_for(request, series_id)
        _check_z(series, z)
        wc = series.window_center if center is None else center
        ww = series.window_width if width is None else width
        etag = png_etag(series, z, wc, ww, size)
        if etag_matches(request, etag):
            return not_modified(etag, IMMUTABLE)
        data = rendering.slice_png(series, z, center=wc, width=ww, size=size)
        response = HttpResponse(data, content_type="image/png")
        response["ETag"] = etag
        response["Cache-Control"] = IMMUTABLE
        response["Content-Length"] = str(len(data))
        return response
