"""The Russian interface in real Chromium: switch the language on the page, the case list, the
editor's script strings (JavaScriptCatalog) and the label palette, and the choice kept per user."""

from __future__ import annotations

import re
from typing import Any

import pytest

# live_server runs in another thread: the data must be committed (transaction=True).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-Word-123"  # tests.factories.UserFactory's password


def log_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_selector("#case-table, .mainnav")


def switch_language(page: Any, code: str) -> None:
    # The menu's change listener comes with site.js at the end of the page: wait for it.
    page.wait_for_load_state("load")
    with page.expect_navigation():
        page.select_option("#language-select", code)


def test_case_list_in_russian_and_the_choice_is_kept_per_user(page, live_server, neurologist):
    from tests.factories import CaseFactory, label

    CaseFactory(code="SA-0101", etiology=label("atherothrombotic"), created_by=neurologist)
    log_in(page, live_server, "neuro")
    assert page.locator(".mainnav").inner_text().startswith("Cases")

    switch_language(page, "ru")
    assert page.locator("html").get_attribute("lang") == "ru"
    assert "Случаи" in page.locator(".mainnav").inner_text()
    table = page.locator("#case-table").inner_text()
    assert "Этиология" in table and "Атеротромботический" in table
    assert re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", table), table

    # Log out, forget every cookie (another browser), log in again: still Russian.
    page.click("text=Выйти")
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.locator("h1").inner_text() == "Log in"  # Chromium asks for English
    log_in(page, live_server, "neuro")
    assert "Случаи" in page.locator(".mainnav").inner_text()


def test_editor_in_russian_script_strings_and_label_titles(page, live_server, phantom_case):
    log_in(page, live_server, "neuro")
    switch_language(page, "ru")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.add_init_script("window.STROKEAID_AUTOSAVE_MS = 0;")
    page.goto(f"{live_server.url}/annotation/cases/{phantom_case.pk}/")
    page.wait_for_selector("body[data-editor-ready='1']", timeout=20000)
    assert not errors, errors

    # Strings rendered by editor.js come from the JavaScript catalogue.
    assert page.locator("#save-status").inner_text() == "Готово"
    assert "срез" in page.locator("#viewport-DWI .vp-slice").inner_text()
    assert "Нет маски" in page.locator("#workflow-list").inner_text()
    assert page.locator("#revision-list").inner_text().strip() == "Ещё не сохранено."
    # Template strings and the label palette (label titles are data, one per language).
    assert page.locator("button.tool[data-tool=brush]").inner_text() == "Кисть"
    palette = page.locator("#label-palette").inner_text()
    for title in ("Кардиоэмболический", "Атеротромботический", "Лакунарный", "Криптогенный"):
        assert title in palette
    assert "Cardioembolic" not in palette
    assert page.locator("#case-etiology option:checked").inner_text() == "Кардиоэмболический"
