"""The bot's only way into Stroke AID: the public REST API (``../API.md``), over httpx.

The bot authenticates as its service account and names the chat in ``X-Bot-Chat``; the
platform then runs the request as the chat's linked account. ``Accept-Language`` asks for the
platform's own error messages in the chat's language, so a refused upload is explained in the
user's words. Nothing here imports the platform's models: this module could run elsewhere.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx


class PlatformDown(Exception):
    """The platform did not answer (connection refused, timeout, 5xx)."""


@dataclass
class PlatformError(Exception):
    """The platform refused the request with a clear message (4xx)."""

    status: int
    message: str
    extra: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class Platform:
    """Async REST client of Stroke AID for the bot."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Token {token}"},
            timeout=timeout,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        chat: int | None = None,
        lang: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if chat is not None:
            headers["X-Bot-Chat"] = str(chat)
        if lang:
            headers["Accept-Language"] = lang
        try:
            response = await self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise PlatformDown(type(exc).__name__) from exc
        if response.status_code >= 500:
            raise PlatformDown(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise PlatformError(
                response.status_code,
                str(body.get("message") or body.get("detail") or response.reason_phrase),
                dict(body.get("extra") or {}),
            )
        return response

    # --- chat links ---------------------------------------------------------------------------
    async def link(self, chat: int, code: str) -> dict[str, Any]:
        r = await self._call("POST", "/api/bot/links/", json={"chat_id": chat, "code": code})
        return dict(r.json())

    async def unlink(self, chat: int) -> bool:
        try:
            await self._call("DELETE", f"/api/bot/links/{chat}/")
        except PlatformError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def link_get(self, chat: int) -> dict[str, Any] | None:
        try:
            r = await self._call("GET", f"/api/bot/links/{chat}/")
        except PlatformError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(r.json())

    async def language_set(self, chat: int, language: str) -> dict[str, Any]:
        r = await self._call("PATCH", f"/api/bot/links/{chat}/", json={"language": language})
        return dict(r.json())

    # --- as the chat's account ----------------------------------------------------------------
    async def labels(self, chat: int, lang: str) -> dict[str, dict[str, Any]]:
        r = await self._call("GET", "/api/labels/", chat=chat, lang=lang)
        return {item["name"]: item for item in r.json()}

    async def case_create(self, chat: int, lang: str, code: str) -> dict[str, Any]:
        r = await self._call("POST", "/api/cases/", chat=chat, lang=lang, json={"code": code})
        return dict(r.json())

    async def cases(self, chat: int, lang: str, *, q: str = "") -> list[dict[str, Any]]:
        r = await self._call("GET", "/api/cases/", chat=chat, lang=lang, params={"q": q})
        return list(r.json().get("results", []))

    async def upload(
        self,
        chat: int,
        lang: str,
        case_id: int,
        files: list[tuple[str, bytes]],
        *,
        kind: str,
        poll_seconds: float = 1.0,
    ) -> dict[str, Any]:
        """Uploads and waits for a background upload job; returns the upload result."""
        r = await self._call(
            "POST",
            f"/api/cases/{case_id}/uploads/",
            chat=chat,
            lang=lang,
            data={"kind": kind},
            files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        )
        body = dict(r.json())
        if r.status_code == 201:
            return body
        job = body.get("id")
        while True:  # 202: a background job
            await asyncio.sleep(poll_seconds)
            state = dict(
                (await self._call("GET", f"/api/uploads/{job}/", chat=chat, lang=lang)).json()
            )
            if state.get("status") == "done":
                return state
            if state.get("status") in ("failed", "interrupted"):
                error = state.get("error") or {}
                raise PlatformError(
                    400, str(error.get("message", "")), dict(error.get("extra") or {})
                )

    async def prediction_request(self, chat: int, lang: str, case_id: int) -> dict[str, Any]:
        r = await self._call("POST", f"/api/cases/{case_id}/predictions/", chat=chat, lang=lang)
        return dict(r.json())

    async def prediction_get(self, chat: int, lang: str, prediction_id: int) -> dict[str, Any]:
        r = await self._call("GET", f"/api/predictions/{prediction_id}/", chat=chat, lang=lang)
        return dict(r.json())

    async def predictions(self, chat: int, lang: str, case_id: int) -> list[dict[str, Any]]:
        r = await self._call("GET", f"/api/cases/{case_id}/predictions/", chat=chat, lang=lang)
        body = r.json()
        return list(body.get("results", body) if isinstance(body, dict) else body)

    async def report_png(self, chat: int, lang: str, prediction_id: int) -> bytes:
        r = await self._call(
            "GET", f"/api/predictions/{prediction_id}/report.png", chat=chat, lang=lang
        )
        return r.content

    def case_url(self, case_id: int) -> str:
        return f"{self.base_url}/cases/{case_id}/"

    def upload_url(self, case_id: int | None = None) -> str:
        return (
            f"{self.base_url}/cases/{case_id}/upload/" if case_id else f"{self.base_url}/cases/new/"
        )
