"""Template context shared by every page: the user's roles, for menus."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.roles import user_roles


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": frozenset()}
    return {"user_roles": user_roles(user)}
