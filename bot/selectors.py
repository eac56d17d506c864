"""Reads of the bot app."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from bot.models import BotChatLink


def is_bot_service(user: AbstractBaseUser | AnonymousUser) -> bool:
    """True for the bot's service account (member of the ``bot_service`` group)."""
    from bot.services import BOT_SERVICE_GROUP

    if not user.is_authenticated:
        return False
    cached: bool | None = getattr(user, "_strokeaid_bot_service", None)
    if cached is None:
        cached = user.groups.filter(name=BOT_SERVICE_GROUP).exists()  # type: ignore[attr-defined]
        setattr(user, "_strokeaid_bot_service", cached)  # noqa: B010
    return cached


def chat_link_get(*, chat_id: int) -> BotChatLink | None:
    return (
        BotChatLink.objects.filter(chat_id=chat_id, revoked_at__isnull=True)
        .select_related("user", "user__profile")
        .first()
    )


def chat_language(link: BotChatLink) -> str:
    """The chat's language: its own choice, else the account's, else English."""
    if link.language:
        return link.language
    profile: Any = getattr(link.user, "profile", None)
    return (profile.language if profile is not None else "") or "en"


def links_for_user(*, user: Any) -> QuerySet[BotChatLink]:
    return BotChatLink.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at")
