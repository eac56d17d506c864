"""Chat links of the Stroke AID bot: which Telegram chat acts for which account.

The bot service holds no database of its own; what it needs to remember lives here, behind
the REST API (``bot.apis``). One-time link codes are stored as SHA-256 hashes only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class BotLinkCode(models.Model):
    """A one-time code a signed-in user sends to the bot as ``/link <code>``."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="bot_link_codes",
        verbose_name=_("user"),
    )
    code_sha256 = models.CharField(_("code hash"), max_length=64, unique=True)
    expires_at = models.DateTimeField(_("expires"))
    used_at = models.DateTimeField(_("used"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("bot link code")
        verbose_name_plural = _("bot link codes")

    def __str__(self) -> str:
        return f"link code of {self.user} until {self.expires_at:%Y-%m-%d %H:%M}"


class BotChatLink(models.Model):
    """A Telegram chat linked to an account; the bot acts there with that account's rights."""

    chat_id = models.BigIntegerField(_("chat"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="bot_chat_links",
        verbose_name=_("user"),
    )
    language = models.CharField(_("language"), max_length=8, blank=True, default="")
    created_at = models.DateTimeField(_("linked"), auto_now_add=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("bot chat link")
        verbose_name_plural = _("bot chat links")
        constraints = [
            models.UniqueConstraint(
                fields=["chat_id"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_active_link_per_chat",
            )
        ]

    def __str__(self) -> str:
        return f"chat {self.chat_id} -> {self.user}"
