"""DRF permission classes built on roles."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .roles import has_role


def role_required(*roles: str) -> type[BasePermission]:
    """A permission class admitting authenticated users holding any of ``roles``."""

    class _HasRole(BasePermission):
        def has_permission(self, request: Request, view: Any) -> bool:
            return bool(
                request.user and request.user.is_authenticated and has_role(request.user, *roles)
            )

    _HasRole.__name__ = "HasRole_" + "_".join(roles)
    return _HasRole
