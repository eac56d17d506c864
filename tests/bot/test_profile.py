"""The "Telegram bot" page and the link REST routes: codes, links, who may do what."""

from __future__ import annotations

import pytest

from bot.models import BotChatLink, BotLinkCode
from bot.services import chat_link, service_account_token
from cases.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_profile_page_makes_a_code_and_lists_and_revokes_links(client, clinician):
    client.force_login(clinician)
    page = client.get("/bot/")
    assert page.status_code == 200 and b'id="link-code-create"' in page.content
    made = client.post("/bot/").content.decode()
    code = made.split('id="link-code">/link ')[1].split("<")[0]
    assert len(code) == 8
    link = chat_link(chat_id=77, code=code)
    assert "77" in client.get("/bot/").content.decode()
    client.post(f"/bot/links/{link.pk}/revoke/")
    assert not BotChatLink.objects.filter(revoked_at__isnull=True).exists()
    verbs = list(AuditEvent.objects.values_list("verb", flat=True))
    assert {"bot.link_code_created", "bot.chat_linked", "bot.chat_unlinked"} <= set(verbs)


def test_only_the_service_account_manages_links_and_acts_for_chats(
    api_client_for, clinician, neurologist
):
    code = api_client_for(clinician).post("/api/bot/link-codes/").json()["code"]
    assert BotLinkCode.objects.get().code_sha256 != code  # only the hash is stored
    # A user cannot link chats nor act for one.
    assert (
        api_client_for(neurologist).post("/api/bot/links/", {"chat_id": 1, "code": code})
    ).status_code == 403
    hijack = api_client_for(neurologist).get("/api/cases/", HTTP_X_BOT_CHAT="1")
    assert hijack.status_code in (401, 403)

    from rest_framework.test import APIClient

    bot = APIClient()
    bot.credentials(HTTP_AUTHORIZATION=f"Token {service_account_token()}")
    assert bot.post("/api/bot/links/", {"chat_id": 1, "code": "WRONG123"}).status_code == 400
    assert bot.post("/api/bot/links/", {"chat_id": 1, "code": code}).status_code == 201
    # As the chat: the clinician's view of the platform, nothing more.
    as_chat = bot.get("/api/cases/", HTTP_X_BOT_CHAT="1")
    assert as_chat.status_code == 200
    training = bot.post("/api/training-runs/", {"epochs": 1}, format="json", HTTP_X_BOT_CHAT="1")
    assert training.status_code == 403  # a clinician is not a data manager
    assert bot.get("/api/cases/", HTTP_X_BOT_CHAT="2").status_code in (401, 403)  # not linked
    # Without a chat the service account is no platform user.
    assert bot.get("/api/cases/").status_code == 403
    assert bot.delete("/api/bot/links/1/").status_code == 204
    assert bot.get("/api/cases/", HTTP_X_BOT_CHAT="1").status_code in (401, 403)
