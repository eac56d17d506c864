"""An ASGI fast path for cached slice PNGs, in front of Django (the viewer's hot path).

Scrolling a viewer or filling a thumbnail grid asks for many small images a second. A request
for ``/api/series/{id}/slices/{z}.png`` is answered here, without Django's middleware and
view machinery, **only** when every decision about it was already taken by the full Django
stack within the last ``AUTH_CACHE_SECONDS``: the token was authenticated
(``CachedTokenAuthentication``), the user's roles were read, the series was found visible to
that user, and that exact PNG (volume hash, slice, window, size) was rendered and cached.
Anything else (session cookies, unknown tokens, bad parameters, a first request, errors) goes
to Django unchanged, which answers it and fills the caches. Responses are byte-identical to
Django's (same ETag, Cache-Control, 304 on If-None-Match).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.http.request import split_domain_port, validate_host

from cases import rendering
from cases.apis.series import IMMUTABLE, png_etag, visible_series_cache
from core.auth_cache import role_cache, token_cache

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PATH = re.compile(r"^/api/series/(\d+)/slices/(\d+)\.png$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def _params(query: bytes) -> tuple[float | None, float | None, int | None] | None:
    """(wc, ww, size) when they are plainly valid, else None (Django answers the 400)."""
    center = width = None
    size = None
    try:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if value == "":
                continue
            if key == "wc":
                center = float(value)
            elif key == "ww":
                width = float(value)
                if not width > 0 or width == float("inf"):
                    return None
            elif key == "size":
                if not value.isdigit() or not 8 <= int(value) <= rendering.MAX_THUMBNAIL:
                    return None
                size = int(value)
            else:
                return None
    except ValueError:
        return None
    if center is not None and not abs(center) < float("inf"):
        return None
    return center, width, size


def _cached_png(scope: Scope) -> tuple[bytes | None, str] | None:
    """``(png or None for 304, etag)`` when Django already decided and rendered it."""
    if scope.get("method") != "GET":
        return None
    match = _PATH.match(scope.get("path", ""))
    if match is None:
        return None
    headers = dict(scope.get("headers") or [])
    auth = headers.get(b"authorization", b"").decode("latin-1").split()
    if len(auth) != 2 or auth[0].lower() != "token":
        return None
    host = headers.get(b"host", b"").decode("latin-1")
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    cached_token = token_cache.get(auth[1])
    if cached_token is None:
        return None
    user = cached_token[0]
    if not user.is_active or not role_cache.get(user.pk):
        return None
    series_id, z = int(match.group(1)), int(match.group(2))
    series = visible_series_cache.get((user.pk, series_id))
    if series is None or not 0 <= z < int(series.shape[0]):
        return None
    params = _params(scope.get("query_string", b""))
    if params is None:
        return None
    center, width, size = params
    wc = series.window_center if center is None else center
    ww = series.window_width if width is None else width
    etag = png_etag(series, z, wc, ww, size)
    if_none_match = headers.get(b"if-none-match", b"").decode("latin-1")
    if if_none_match:
        candidates = {part.strip().removeprefix("W/") for part in if_none_match.split(",")}
        if etag in candidates or "*" in candidates:
            return None, etag
    png = rendering.cached_slice_png(series, z, center=wc, width=ww, size=size)
    if png is None:
        return None
    return png, etag


class SliceFastPath:
    """ASGI wrapper: serves already-authorised, already-rendered slice PNGs; else ``app``."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hit = _cached_png(scope) if scope["type"] == "http" else None
        if hit is None:
            await self.app(scope, receive, send)
            return
        body, etag = hit
        headers = [
            (b"etag", etag.encode("latin-1")),
            (b"cache-control", IMMUTABLE.encode("latin-1")),
            *_SECURITY_HEADERS,
        ]
        if body is None:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", b"image/png"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
