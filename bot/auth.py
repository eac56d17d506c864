"""The bot acts for a chat with that chat's linked account.

The bot service authenticates with its service account's token and names the chat in
``X-Bot-Chat``; when the chat is linked, the request runs as the linked user (with exactly
that user's roles and object permissions), and ``request.strokeaid_origin`` records that it
came through the bot (case creation audits it). Without the header the service account is
itself (it may only manage chat links).
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.drainage import set_override
from rest_framework import exceptions
from rest_framework.request import Request

from accounts.tokens import ExpiringTokenAuthentication

HEADER = "HTTP_X_BOT_CHAT"


class BotChatAuthentication(ExpiringTokenAuthentication):
    """Token authentication of the bot's service account acting for a linked chat."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        chat = request.META.get(HEADER)
        if not chat:
            return None  # the other authentication classes decide
        found = super().authenticate(request)
        if found is None:
            return None
        service, token = found
        from bot.selectors import chat_link_get, is_bot_service

        if not is_bot_service(service):
            raise exceptions.AuthenticationFailed(_("Only the bot may act for a chat."))
        try:
            chat_id = int(chat)
        except ValueError as exc:
            raise exceptions.AuthenticationFailed(_("Bad chat id.")) from exc
        link = chat_link_get(chat_id=chat_id)
        if link is None or not link.user.is_active:
            raise exceptions.AuthenticationFailed(_("This chat is not linked to an account."))
        request.strokeaid_origin = {"via": "telegram-bot", "chat": chat_id}  # type: ignore[attr-defined]
        return link.user, token


# The same "Authorization: Token <key>" scheme as DRF's (plus a header): one security scheme.
set_override(BotChatAuthentication, "suppress_collision_warning", True)
