"""Writes for accounts: users with roles, language preference."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.models import User as AuthUser
from django.db import transaction
from django.utils.translation import gettext as _

from strokeaid_site.errors import ApplicationError

from .models import Profile
from .roles import ROLES


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    roles: Iterable[str] = (),
    email: str = "",
    is_superuser: bool = False,
) -> AuthUser:
    """Creates a user holding ``roles`` (role names from ``accounts.roles.ROLES``)."""
    roles = list(roles)
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ApplicationError(_("Unknown role."), {"roles": unknown})
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ApplicationError(_("A user with that name exists."), {"username": username})
    if is_superuser:
        user = User.objects.create_superuser(username=username, password=password, email=email)
    else:
        user = User.objects.create_user(username=username, password=password, email=email)
    if roles:
        user.groups.add(*Group.objects.filter(name__in=roles))
    Profile.objects.create(user=user)
    return user


def user_set_language(*, user: AuthUser, language: str) -> None:
    """Remembers the user's interface language."""
    if language not in dict(settings.LANGUAGES):
        raise ApplicationError(_("Unsupported language."), {"language": language})
    Profile.objects.update_or_create(user=user, defaults={"language": language})
