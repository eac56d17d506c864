"""The Stroke AID bot end to end: python-telegram-bot against an in-process fake of the Bot
API, the real platform behind a live server (no network)."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from bot.models import BotChatLink, BotLinkCode
from cases.models import AuditEvent, Case, Series
from tests.cases.upload_fixtures import series_files

pytestmark = [pytest.mark.django_db(transaction=True)]

CHAT = 5001


def _zip(paths: list[Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for p in paths:
            z.writestr(f"DICOM/{p.name}", p.read_bytes())
    return out.getvalue()


def test_link_with_good_reused_and_expired_codes(run_bot, telegram, api_client_for, clinician):
    run_bot()
    telegram.send_text(CHAT, "/start")
    assert "not linked" in telegram.wait_for(CHAT, lambda t: "Stroke AID bot" in t)
    code = api_client_for(clinician).post("/api/bot/link-codes/")
    assert code.status_code == 201 and len(code.json()["code"]) == 8
    telegram.send_text(CHAT, f"/link {code.json()['code']}")
    telegram.wait_for(CHAT, lambda t: "now linked to " + clinician.username in t)
    assert BotChatLink.objects.get(revoked_at__isnull=True).user == clinician
    assert BotLinkCode.objects.get().used_at is not None  # stored hashed, used once

    other = CHAT + 1
    telegram.send_text(other, f"/link {code.json()['code']}")
    telegram.wait_for(other, lambda t: "unknown, used or expired" in t)
    stale = api_client_for(clinician).post("/api/bot/link-codes/").json()["code"]
    BotLinkCode.objects.filter(used_at__isnull=True).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    telegram.send_text(other, f"/link {stale}")
    telegram.wait_until(
        lambda: sum("unknown, used or expired" in t for t in telegram.texts(other)) == 2
    )
    assert not BotChatLink.objects.filter(chat_id=other).exists()

    telegram.send_text(CHAT, "/unlink")
    telegram.wait_for(CHAT, lambda t: "no longer linked" in t)
    assert not BotChatLink.objects.filter(revoked_at__isnull=True).exists()


def test_unlinked_chat_gets_only_help(run_bot, telegram):
    run_bot()
    telegram.send_document(CHAT, "study.zip", _zip(series_files("DWI")))
    telegram.wait_for(CHAT, lambda t: "not linked to a Stroke AID account" in t)
    telegram.send_text(CHAT, "/cases")
    telegram.wait_until(lambda: len(telegram.texts(CHAT)) == 2)
    assert "not linked" in telegram.texts(CHAT)[1]
    assert not Case.objects.exists()


def test_dicom_zip_gets_a_picture_with_the_etiology(
    run_bot, telegram, link_chat, clinician, registered_model
):
    registered_model()
    run_bot()
    link_chat(CHAT, clinician)
    telegram.send_document(CHAT, "study.zip", _zip(series_files("DWI")))
    caption = telegram.wait_for(CHAT, lambda t: "/cases/" in t and "TG-" in t, timeout=120)
    assert "Etiology:" in caption or "No lesion found." in caption
    photo = telegram.sent(CHAT, "sendPhoto")[-1]["photo"]
    assert photo[:8] == b"\x89PNG\r\n\x1a\n"  # the platform's report picture
    telegram.wait_for(CHAT, lambda t: t.endswith("done."))
    texts = telegram.texts(CHAT)
    assert any("received, uploading" in t for t in texts)
    assert any("de-identified and stored (1 series)" in t for t in texts)
    case = Case.objects.get(code__startswith="TG-")
    assert case.created_by == clinician
    event = AuditEvent.objects.get(verb="case.created", target_id=str(case.pk))
    assert event.data["origin"] == {"via": "telegram-bot", "chat": CHAT}
    assert event.actor == clinician
    assert Series.objects.filter(case=case, kind="DWI").exists()


def test_nifti_with_a_caption_kind(run_bot, telegram, link_chat, clinician, registered_model):
    import nibabel as nib
    import numpy as np

    registered_model()
    run_bot()
    link_chat(CHAT, clinician)
    image = nib.Nifti1Image(
        np.random.default_rng(0).random((40, 40, 8)).astype(np.float32) * 1000,
        np.diag([1.5, 1.5, 5.0, 1.0]),
    )
    telegram.send_document(CHAT, "series.nii", image.to_bytes(), caption="FLAIR, axial")
    telegram.wait_for(CHAT, lambda t: "/cases/" in t, timeout=120)
    case = Case.objects.get(code__startswith="TG-")
    assert list(case.series.values_list("kind", flat=True)) == ["FLAIR"]


def test_bad_inputs_get_clear_answers_and_store_nothing(
    run_bot, telegram, link_chat, clinician, registered_model
):
    registered_model()
    run_bot()
    link_chat(CHAT, clinician)
    telegram.send_photo(CHAT)
    telegram.wait_for(CHAT, lambda t: "A photo cannot be analysed" in t)
    telegram.send_document(CHAT, "big.zip", b"x", declared_size=25 * 1024 * 1024)
    telegram.wait_for(CHAT, lambda t: "larger than the 20 MB" in t and "/cases/new/" in t)
    telegram.send_document(CHAT, "notes.txt", b"hello")
    telegram.wait_for(CHAT, lambda t: "Send a .zip of DICOM files" in t)
    assert not Case.objects.exists()
    telegram.send_document(CHAT, "broken.zip", b"PK\x03\x04 this is not a zip")
    refused = telegram.wait_for(CHAT, lambda t: "refused by Stroke AID" in t, timeout=60)
    assert "zip" in refused.lower()
    assert not Series.objects.exists()  # the platform stored nothing of it


def test_platform_down_means_try_again_later(run_bot, telegram, link_chat, clinician):
    run_bot(platform_url="http://127.0.0.1:9")  # nothing listens there
    telegram.send_text(CHAT, "/cases")
    telegram.wait_for(CHAT, lambda t: "not answering" in t)


def test_rate_limit_per_chat(run_bot, telegram, link_chat, clinician, registered_model):
    registered_model()
    run_bot(studies_per_hour=1)
    link_chat(CHAT, clinician)
    telegram.send_document(CHAT, "notes.txt", b"hello")  # refused before it counts
    telegram.wait_for(CHAT, lambda t: "Send a .zip" in t)
    telegram.send_document(CHAT, "study.zip", _zip(series_files("DWI")))
    telegram.wait_for(CHAT, lambda t: "/cases/" in t, timeout=120)
    telegram.send_document(CHAT, "study.zip", _zip(series_files("DWI")))
    telegram.wait_for(CHAT, lambda t: "studies in the last hour" in t)
    assert Case.objects.count() == 1


def test_russian_replies(run_bot, telegram, link_chat, clinician):
    run_bot()
    link_chat(CHAT, clinician)
    telegram.send_text(CHAT, "/lang ru")
    telegram.wait_for(CHAT, lambda t: "по-русски" in t)
    telegram.send_photo(CHAT)
    telegram.wait_for(CHAT, lambda t: "Фотографию нельзя" in t)
    telegram.send_text(CHAT, "/cases")
    telegram.wait_for(CHAT, lambda t: "Исследований пока нет" in t)


def test_a_zip_bomb_and_a_mixed_series_get_the_platforms_own_answer(
    run_bot, telegram, link_chat, clinician, registered_model
):
    from tests.cases.test_upload_api import _mixed_shapes
    from tests.cases.upload_fixtures import zip_bytes

    registered_model()
    run_bot()
    link_chat(CHAT, clinician)
    telegram.send_document(CHAT, "bomb.zip", zip_bytes({"big.dcm": b"\0" * (6 * 1024 * 1024)}))
    bomb = telegram.wait_for(CHAT, lambda t: "refused by Stroke AID" in t)
    mixed = zip_bytes({f.name: f.read() for f in _mixed_shapes()})
    telegram.send_document(CHAT, "mixed.zip", mixed)
    telegram.wait_until(
        lambda: sum("refused by Stroke AID" in t for t in telegram.texts(CHAT)) == 2
    )
    answers = [t for t in telegram.texts(CHAT) if "refused by Stroke AID" in t]
    assert bomb in answers and "compress" in bomb.lower()
    assert "sizes" in answers[1].lower() or "rows/columns" in answers[1].lower()
    assert not Series.objects.exists()
