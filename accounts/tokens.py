"""API tokens that expire, are rotated with the password and die with the account.

DRF's ``Token`` never expires and survives a password change; a leaked token then works for
ever. Here a token older than ``STROKEAID_TOKEN_TTL_HOURS`` is refused (and deleted), and a
password change or deactivation deletes the user's tokens (``tokens_revoke_on_credentials``,
connected to the user model's save so that every path counts: the admin, ``changepassword``,
``set_password`` in code).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from strokeaid_site.conf import app_settings


def token_ttl() -> timedelta | None:
    """How long a token is valid; ``None`` when tokens do not expire (TTL 0)."""
    hours = float(app_settings.TOKEN_TTL_HOURS)
    return timedelta(hours=hours) if hours > 0 else None


def token_expires_at(token: Token) -> Any:
    ttl = token_ttl()
    return token.created + ttl if ttl is not None else None


def token_is_expired(token: Token) -> bool:
    expires = token_expires_at(token)
    return expires is not None and expires <= timezone.now()


@transaction.atomic
def token_obtain(*, user: User) -> Token:
    """The user's valid token, or a new one when there is none or it expired."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is not None and not token_is_expired(token):
        return token
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


def tokens_revoke(*, user: User) -> int:
    """Deletes every token of ``user``; returns how many."""
    deleted, _by_model = Token.objects.filter(user=user).delete()
    return int(deleted)


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication that refuses (and deletes) expired tokens."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        user, token = super().authenticate_credentials(key)
        if token_is_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed(_("Token expired: request a new one."))
        return user, token


def tokens_revoke_on_credentials(sender: Any, instance: User, **kwargs: Any) -> None:
    """``pre_save`` of the user model: a new password hash or a deactivation revokes the
    user's tokens (in the save's transaction, when there is one)."""
    if instance.pk is None or kwargs.get("raw"):
        return
    before = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if before is None:
        return
    if before["password"] != instance.password or (before["is_active"] and not instance.is_active):
        Token.objects.filter(user_id=instance.pk).delete()
