"""Activating a worse model in Chromium: the comparison, the refusal without a reason, the
override with one."""

from __future__ import annotations

import pytest

from inference.models import ModelVersion
from inference.services.promotion import comparison_compute
from tests.annotation.test_editor_browser import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_worse_model_needs_a_reason_to_replace_the_active_one(
    page, live_server, client, data_manager, two_models
):
    active, candidate, cases = two_models(candidate_good=False)
    comparison_compute(candidate=candidate, active=active, user=data_manager)
    login(page, live_server, client, data_manager)
    page.goto(f"{live_server.url}/models/")
    page.locator(f"tr[data-model='{candidate.pk}'] a", has_text="Activate").click()
    page.wait_for_selector("#comparison-table")
    dice = page.locator("#comparison-table tr[data-measure='dice']")
    assert "worse" in dice.inner_text()
    assert dice.locator("td").nth(3).inner_text().strip() == str(len(cases))
    assert page.locator("#worse-warning").is_visible()

    # The browser itself refuses an empty reason (required), and nothing changes.
    page.locator("#activate-confirm").click()
    assert page.url.endswith(f"/models/{candidate.pk}/activate/")
    assert list(ModelVersion.objects.filter(is_active=True)) == [active]

    page.fill("textarea[name=override_reason]", "validated on the new protocol by hand")
    page.locator("#activate-confirm").click()
    page.wait_for_url(f"{live_server.url}/models/")
    assert page.locator(f"tr[data-model='{candidate.pk}'] .badge.ok").inner_text() == "active"
    assert list(ModelVersion.objects.filter(is_active=True)) == [candidate]
