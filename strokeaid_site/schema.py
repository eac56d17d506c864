"""OpenAPI schema generation tuned to the code's shape (one APIView per operation).

Every APIView nests its own ``InputSerializer``/``OutputSerializer``; drf-spectacular would
name all of them "Input"/"Output" and collide. Components of nested serializers are named
after their view instead: ``CaseListCreateApi.InputSerializer`` -> ``CaseListCreateInput``.

Every operation also documents the errors it can answer, all in the one ``{"message",
"extra"}`` shape (``Error``): 400 for bad input, 401/403 for authentication and roles, 404 for
an unknown or invisible object in the path, 409 for a write the object's state refuses, 413 for
a body over its limit, 503 when the database is unreachable, and what a view declares in
``error_statuses`` (412/428 for ``If-Match``, 429 for the login guard).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: the message says what, ``extra`` names the fields.",
    "401": "No valid credentials (missing, unknown or expired token).",
    "403": "Authenticated, but the role may not do this.",
    "404": "Unknown, or not visible to the caller (lists: a page past the last one).",
    "409": "The object's current state does not allow this.",
    "412": "If-Match names an older revision (someone saved since).",
    "413": "The body is larger than this route accepts.",
    "428": "If-Match is required once the object exists.",
    "429": "Too many attempts: wait ``extra.retry_after`` seconds.",
    "503": "The database is unavailable; retry after ``Retry-After`` seconds.",
}


class ErrorSerializer(serializers.Serializer[Any]):
    """The one error shape of the API."""

    message = serializers.CharField()
    extra = serializers.DictField()


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else serializer.__class__
        if cls is ErrorSerializer:
            return "Error"
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer:
            return super().get_serializer_name(serializer, direction)
        view = outer.split(".")[-1].removesuffix("Api").removesuffix("View")
        return view + inner

    def _error_statuses(self) -> set[str]:
        codes = {"400", "503"}
        if self.get_auth():
            codes |= {"401", "403"}
        if "{" in self.path or self._get_paginator() is not None:  # type: ignore[no-untyped-call]
            codes.add("404")  # an unknown object in the path, or a page past the last
        if self.method in {"POST", "PUT", "PATCH", "DELETE"}:
            codes |= {"409", "413"}
        codes |= {str(code) for code in getattr(self.view, "error_statuses", ())}
        return codes

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error = self.resolve_serializer(ErrorSerializer, direction).ref
        for code in sorted(self._error_statuses()):
            responses.setdefault(
                code,
                {
                    "description": ERROR_DESCRIPTIONS[code],
                    "content": {"application/json": {"schema": error}},
                },
            )
        return responses
