"""The "Telegram bot" page of a signed-in user: a one-time link code, the linked chats."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.auth import request_user
from bot import selectors, services
from strokeaid_site.errors import ApplicationError


@login_required
def profile_bot_view(request: HttpRequest) -> HttpResponse:
    code = expires_at = None
    if request.method == "POST":
        try:
            code, expires_at = services.link_code_create(user=request_user(request))
        except ApplicationError as exc:
            messages.error(request, exc.message)
    return render(
        request,
        "bot/profile.html",
        {
            "code": code,
            "expires_at": expires_at,
            "links": selectors.links_for_user(user=request.user),
            "bot_name": settings.STROKEAID.get("TELEGRAM_BOT_NAME", ""),
        },
    )


@login_required
@require_POST
def link_revoke_view(request: HttpRequest, link_id: int) -> HttpResponse:
    try:
        services.link_revoke(link_id=link_id, actor=request_user(request))
        messages.success(request, _("The chat is no longer linked."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("bot:profile"))
