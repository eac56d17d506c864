"""Writes of the bot app: one-time link codes, chat links, the bot's service account."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.authtoken.models import Token

from accounts.roles import user_roles
from accounts.services import user_set_language
from bot.models import BotChatLink, BotLinkCode
from cases.services.audit import audit_record
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError

#: How long a link code stays valid.
LINK_CODE_TTL = timedelta(minutes=10)
#: The group of the bot's service account (not a clinical role: it never appears in the UI).
BOT_SERVICE_GROUP = "bot_service"
BOT_SERVICE_USERNAME = "stroke-aid-bot"
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: typed on a phone


def _hash(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def link_code_create(*, user: User) -> tuple[str, datetime]:
    """A fresh one-time code for ``user`` (who must hold a platform role)."""
    if not user_roles(user):
        raise ForbiddenError(_("Only platform users can link a chat."))
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    expires_at = timezone.now() + LINK_CODE_TTL
    BotLinkCode.objects.create(user=user, code_sha256=_hash(code), expires_at=expires_at)
    audit_record(actor=user, verb="bot.link_code_created", target=user, data={})
    return code, expires_at


def chat_link(*, chat_id: int, code: str) -> BotChatLink:
    """Links ``chat_id`` to the account that made ``code`` (single use, 10 minutes).

    Raises:
        ApplicationError: unknown, used or expired code (one message for all three: the chat
            learns nothing about which codes exist).
    """
    now = timezone.now()
    with transaction.atomic():
        found = (
            BotLinkCode.objects.select_for_update()
            .select_related("user")
            .filter(code_sha256=_hash(code))
            .first()
        )
        if found is None or found.used_at is not None or found.expires_at <= now:
            raise ApplicationError(
                _("This code is unknown, used or expired. Create a new one on your profile page."),
                {"field": "code"},
            )
        if not found.user.is_active:
            raise ApplicationError(_("This account is disabled."), {"field": "code"})
        found.used_at = now
        found.save(update_fields=["used_at"])
        BotChatLink.objects.filter(chat_id=chat_id, revoked_at__isnull=True).update(revoked_at=now)
        link = BotChatLink.objects.create(chat_id=chat_id, user=found.user)
        audit_record(actor=found.user, verb="bot.chat_linked", target=link, data={"chat": chat_id})
    return link


def chat_unlink(*, chat_id: int, actor: User | None) -> bool:
    """Ends the chat's link; False when it had none."""
    now = timezone.now()
    with transaction.atomic():
        links = list(
            BotChatLink.objects.select_for_update().filter(chat_id=chat_id, revoked_at__isnull=True)
        )
        for link in links:
            link.revoked_at = now
            link.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor or link.user,
                verb="bot.chat_unlinked",
                target=link,
                data={"chat": chat_id},
            )
    return bool(links)


def link_revoke(*, link_id: int, actor: User) -> None:
    """An admin (or the owner) ends a link from the web."""
    link = BotChatLink.objects.filter(pk=link_id, revoked_at__isnull=True).first()
    if link is None:
        raise NotFoundError(_("No such active link."))
    if link.user_id != actor.pk and not actor.is_staff:
        raise ForbiddenError(_("Only the owner or an administrator may revoke this link."))
    chat_unlink(chat_id=link.chat_id, actor=actor)


def chat_language_set(*, link: BotChatLink, language: str) -> BotChatLink:
    """The chat's reply language (also the account's interface language)."""
    if language not in dict(settings.LANGUAGES):
        raise ApplicationError(_("Unsupported language."), {"field": "language"})
    link.language = language
    link.save(update_fields=["language"])
    user_set_language(user=link.user, language=language)
    return link


def service_account_token() -> str:
    """The bot's service account and its API token (created on first use)."""
    group, _created = Group.objects.get_or_create(name=BOT_SERVICE_GROUP)
    user, created = get_user_model().objects.get_or_create(
        username=BOT_SERVICE_USERNAME, defaults={"is_active": True}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(group)
    token, _created = Token.objects.get_or_create(user=user)
    return str(token.key)
