"""The platform's roles. Roles are Django groups created by a data migration."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils.translation import gettext_lazy as _

NEUROLOGIST = "neurologist"
REVIEWER = "reviewer"
DATA_MANAGER = "data_manager"
CLINICIAN = "clinician"

ROLES = {
    NEUROLOGIST: _("Neurologist (annotator)"),
    REVIEWER: _("Reviewer"),
    DATA_MANAGER: _("Data manager"),
    CLINICIAN: _("Clinician"),
}


def user_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The role names of ``user``; superusers hold every role. Cached on the user object."""
    if not user.is_authenticated:
        return frozenset()
    cached: frozenset[str] | None = getattr(user, "_strokeaid_roles", None)
    if cached is not None:
        return cached
    if getattr(user, "is_superuser", False):
        roles = frozenset(ROLES)
    else:
        roles = frozenset(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    # The cache lives on the user object itself (one request), so setattr, not a declared field.
    setattr(user, "_strokeaid_roles", roles)  # noqa: B010
    return roles


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))
