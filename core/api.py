"""REST plumbing every app's APIs share.

``HasAnyRole`` (a user without a role gets 403 everywhere), ``FallbackContentNegotiation`` for
file endpoints (a client that asks for ``image/png`` or ``application/octet-stream`` still
receives JSON errors instead of a 406) and the page-number pagination of list endpoints.
"""

from __future__ import annotations

from typing import Any

from rest_framework import pagination
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request

from accounts.permissions import role_required
from accounts.roles import ROLES

#: Any authenticated user holding at least one role.
HasAnyRole = role_required(*ROLES)


class FallbackContentNegotiation(BaseContentNegotiation):
    """Always the first renderer (JSON): file endpoints render only their errors, and parsing
    ``Accept`` on every slice request would be wasted time."""

    # DRF hands over the view's renderer list (APIView.get_renderers); the stub widens it to
    # Iterable, which cannot be indexed.
    def select_renderer(  # type: ignore[override]
        self, request: Request, renderers: list[Any], format_suffix: str | None = None
    ) -> tuple[Any, str]:
        return renderers[0], renderers[0].media_type


class PageNumberPagination(pagination.PageNumberPagination):
    """DRF's page-number pagination (``{"count", "next", "previous", "results"}``) that also
    takes ``?page_size=`` (at most 200)."""

    page_size_query_param = "page_size"
    max_page_size = 200
