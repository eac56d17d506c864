from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from bot.models import BotChatLink

if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = admin.ModelAdmin


@admin.register(BotChatLink)
class BotChatLinkAdmin(ModelAdminBase):
    list_display = ("chat_id", "user", "language", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("user__username",)
    readonly_fields = ("chat_id", "user", "created_at", "revoked_at")
    actions = ["revoke"]

    @admin.action(description=_("Revoke the selected chat links"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[BotChatLink]) -> None:
        from bot.services import chat_unlink

        for link in queryset.filter(revoked_at__isnull=True):
            chat_unlink(chat_id=link.chat_id, actor=request.user)  # type: ignore[arg-type]
