"""Short-lived per-process caches for the image endpoints' hot path (and its ASGI fast path).

Scrolling through a series fires dozens of requests a second; the token, the user's roles and
(in ``cases``) the series' visibility are remembered for ``AUTH_CACHE_SECONDS``, so a revoked
token or a changed role reaches these read-only endpoints within that many seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from drf_spectacular.drainage import set_override

from accounts.roles import user_roles
from accounts.tokens import ExpiringTokenAuthentication


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
#: looked up before.
AUTH_CACHE_SECONDS = 10.0
#: ``token key -> (user, token)`` as DRF's token authentication found them.
token_cache = TtlCache(ttl=AUTH_CACHE_SECONDS)
#: ``user id -> frozenset of role names``.
role_cache = TtlCache(ttl=AUTH_CACHE_SECONDS)


class CachedTokenAuthentication(ExpiringTokenAuthentication):
    """Expiring token authentication remembering ``token -> user`` for ``AUTH_CACHE_SECONDS``."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        cached: tuple[Any, Any] | None = token_cache.get(key)
        if cached is not None:
            return cached
        user, token = super().authenticate_credentials(key)
        token_cache.put(key, (user, token))
        return user, token


# The same "Authorization: Token <key>" scheme as DRF's: one security scheme in the schema.
set_override(CachedTokenAuthentication, "suppress_collision_warning", True)


def roles_prime(user: Any) -> None:
    """Sets the roles ``accounts.roles.user_roles`` caches on the user from a short-lived
    per-process cache, so a session-authenticated image request does not query groups."""
    if not getattr(user, "is_authenticated", False) or hasattr(user, "_strokeaid_roles"):
        return
    roles = role_cache.get(user.pk)
    if roles is None:
        roles = user_roles(user)
        role_cache.put(user.pk, roles)
    else:
        user._strokeaid_roles = roles


def auth_caches_clear() -> None:
    token_cache.clear()
    role_cache.clear()
