"""Helpers of the browser tests (Playwright in Debian's Chromium)."""

from __future__ import annotations

from typing import Any

PASSWORD = "pass-Word-123"  # tests.factories.UserFactory's password


def login(page: Any, base_url: str, user: Any) -> None:
    """Signs ``user`` in through the login page and waits for the menu."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_selector(".mainnav")
