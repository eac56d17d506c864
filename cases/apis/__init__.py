"""REST APIs of the cases app, one module per concept: labels, cases, series (and uploads).

Shared pieces: ``HasAnyRole`` (a user without a role gets 403 everywhere) and
``FallbackContentNegotiation`` for file endpoints, so a client that asks for ``image/png``
or ``application/octet-stream`` still receives JSON errors instead of a 406.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from drf_spectacular.drainage import set_override
from rest_framework import pagination
from rest_framework.authentication import TokenAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request

from accounts.permissions import role_required
from accounts.roles import ROLES, user_roles

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


class TtlCache:
    """A small per-process cache with a time-to-live, for the image endpoints' hot path."""

    def __init__(self, *, ttl: float, max_items: int = 4096) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self._data: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any | None:
        item = self._data.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._data) >= self.max_items:
                now = time.monotonic()
                self._data = {k: v for k, v in self._data.items() if v[0] >= now}
                if len(self._data) >= self.max_items:
                    self._data.clear()
            self._data[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


#: How long the image endpoints trust a token, a user's roles and a series' visibility they
#: looked up before. Scrolling through a series fires dozens of requests a second; a revoked
#: token or a changed role reaches these read-only endpoints within this many seconds.
AUTH_CACHE_SECONDS = 10.0
_tokens = TtlCache(ttl=AUTH_CACHE_SECONDS)
_roles = TtlCache(ttl=AUTH_CACHE_SECONDS)


class CachedTokenAuthentication(TokenAuthentication):
    """DRF token authentication remembering ``token -> user`` for ``AUTH_CACHE_SECONDS``."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        cached: tuple[Any, Any] | None = _tokens.get(key)
        if cached is not None:
            return cached
        user, token = super().authenticate_credentials(key)
        _tokens.put(key, (user, token))
        return user, token


# The same "Authorization: Token <key>" scheme as DRF's: one security scheme in the schema.
set_override(CachedTokenAuthentication, "suppress_collision_warning", True)


def roles_prime(user: Any) -> None:
    """Sets the roles ``accounts.roles.user_roles`` caches on the user from a short-lived
    per-process cache, so a session-authenticated image request does not query groups."""
    if not getattr(user, "is_authenticated", False) or hasattr(user, "_strokeaid_roles"):
        return
    roles = _roles.get(user.pk)
    if roles is None:
        roles = user_roles(user)
        _roles.put(user.pk, roles)
    else:
        user._strokeaid_roles = roles


def auth_caches_clear() -> None:
    _tokens.clear()
    _roles.clear()
