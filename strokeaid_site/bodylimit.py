"""ASGI middleware: a request body over its route's limit is refused before Django reads it.

Django's ASGI handler reads the whole body (into a spooled temporary file) before any view
runs, so a view's own size check comes too late: a 300 MiB body to a 1.6 MB mask route used to
be read to the end, with ~600 MiB of ``/tmp``, before the 413. Here a declared
``Content-Length`` over the limit is answered ``413`` at once (nothing is read), and a body
without one (chunked) is counted while it arrives and cut off at the limit. Views still apply
their own, tighter limits (a mask's size follows from its series' shape).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from strokeaid_site.conf import app_settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Routes that take whole studies: up to ``STROKEAID_MAX_UPLOAD_BYTES``.
UPLOAD_ROUTES = re.compile(r"^/((api/)?cases/\d+/uploads?/|dicomweb/studies(/[0-9.]+)?/?)$")


def body_limit(path: str, content_type: str) -> int:
    """The largest body accepted for ``path`` with ``content_type`` (bytes)."""
    if UPLOAD_ROUTES.match(path):
        return int(app_settings.MAX_UPLOAD_BYTES)
    if content_type.split(";")[0].strip().lower() in {
        "application/json",
        "application/x-www-form-urlencoded",
    }:
        return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    return int(app_settings.MAX_BODY_BYTES)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers", [])}


async def _error(send: Send, status: int, message: str, extra: dict[str, Any]) -> None:
    body = json.dumps({"message": message, "extra": extra}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Wraps the HTTP app; ``limit_for(path, content_type)`` gives each route's limit."""

    def __init__(self, app: AsgiApp, limit_for: Callable[[str, str], int] = body_limit) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = self.limit_for(scope.get("path", ""), content_type)
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await _error(send, 400, _("Invalid Content-Length header."), {})
                return
            if length > limit:
                await _error(
                    send,
                    413,
                    _("The request body is too large."),
                    {"limit": limit, "received": length},
                )
                return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django stops reading at a disconnect and answers nothing; we answer.
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counted_receive, tracked_send)
        if exceeded and not started:
            await _error(send, 413, _("The request body is too large."), {"limit": limit})
