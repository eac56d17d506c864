"""REST APIs of the cases app, one module per concept: labels, cases, series (and uploads).

Shared pieces: ``HasAnyRole`` (a user without a role gets 403 everywhere) and
``FallbackContentNegotiation`` for file endpoints, so a client that asks for ``image/png``
or ``application/octet-stream`` still receives JSON errors instead of a 406.
"""

from __future__ import annotations

from typing import Any

from rest_framework import pagination
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request

from accounts.permissions import role_required
from accounts.roles import ROLES

HasAnyRole = role_required(*ROLES)


class FallbackContentNegotiation(DefaultContentNegotiation):
    """Picks the first renderer (JSON) when the Accept header names only a file type."""

    def select_renderer(
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Exception:  # noqa: BLE001 - NotAcceptable: answer JSON anyway
            return renderers[0], renderers[0].media_type


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's page-number pagination (``{"count", "next", "previous", "results"}``) that also
    takes ``?page_size=`` (at most 200)."""

    page_size_query_param = "page_size"
    max_page_size = 200
