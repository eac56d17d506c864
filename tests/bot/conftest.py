"""The real bot (python-telegram-bot) against the fake Bot API and the real platform
(live server; tasks run inline, as the test settings say)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.services import service_account_token
from bot.telegram.app import BotConfig, StrokeAidBot
from tests.bot.fake_telegram import FakeTelegram
from tests.inference.conftest import make_phantom_case, registered_model  # noqa: F401


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def run_bot(live_server: Any, telegram: FakeTelegram) -> Iterator[Callable[..., StrokeAidBot]]:
    """Starts the bot (its own thread and event loop) polling the fake Bot API."""
    stops: list[Callable[[], None]] = []

    def _run(**overrides: Any) -> StrokeAidBot:
        config = BotConfig(
            token="123:TEST",
            telegram_api_url=telegram.url,
            platform_url=overrides.pop("platform_url", live_server.url),
            platform_token=service_account_token(),
            poll_seconds=0.2,
            **overrides,
        )
        bot = StrokeAidBot(config)
        stops.append(bot.start_in_thread())
        return bot

    yield _run
    for stop in stops:
        stop()


@pytest.fixture
def link_chat(api_client_for: Any, telegram: FakeTelegram) -> Callable[..., None]:
    """Links ``chat`` to ``user`` the way a user does: a code from the API, /link in chat."""

    def _link(chat: int, user: Any, *, language: str = "en") -> None:
        code = api_client_for(user).post("/api/bot/link-codes/").json()["code"]
        telegram.send_text(chat, f"/link {code}", language=language)
        telegram.wait_for(chat, lambda t: "now linked" in t or "привязан" in t)

    return _link
