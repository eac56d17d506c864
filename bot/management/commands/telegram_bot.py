"""``python manage.py telegram_bot``: the Stroke AID bot (long polling, or a webhook).

Configured by ``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_API_URL`` (the Bot API root; tests point it at
a local server) and ``STROKEAID_API_URL``; it calls the platform with ``STROKEAID_BOT_TOKEN``,
or creates the service account's token itself when that is unset. SIGTERM and SIGINT stop it
gracefully (python-telegram-bot finishes the running handlers).
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from bot.telegram.app import BotConfig, StrokeAidBot


def bot_config() -> BotConfig:
    conf = settings.STROKEAID
    token = str(conf.get("TELEGRAM_BOT_TOKEN") or "")
    if not token:
        raise CommandError(
            "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather, then "
            "TELEGRAM_BOT_TOKEN=<token> python manage.py telegram_bot"
        )
    platform_token = str(conf.get("BOT_API_TOKEN") or "")
    if not platform_token:
        from bot.services import service_account_token

        platform_token = service_account_token()
    return BotConfig(
        token=token,
        telegram_api_url=str(conf["TELEGRAM_API_URL"]),
        platform_url=str(conf["API_URL"]),
        platform_token=platform_token,
        studies_per_hour=int(conf["BOT_STUDIES_PER_HOUR"]),
    )


class Command(BaseCommand):
    help = "Runs the Stroke AID Telegram bot (a client of the REST API)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--webhook-url",
            default="",
            help="Public HTTPS URL Telegram posts updates to (webhook mode behind the ingress).",
        )
        parser.add_argument(
            "--listen",
            default="0.0.0.0",  # noqa: S104  (inside its container, behind the ingress)
            help="Webhook: address to listen on.",
        )
        parser.add_argument("--port", type=int, default=8443, help="Webhook: port to listen on.")

    def handle(self, *args: Any, **options: Any) -> None:
        bot = StrokeAidBot(bot_config())
        app = bot.build()
        stop = (signal.SIGINT, signal.SIGTERM)
        self.stdout.write("Stroke AID bot: running (Ctrl+C or SIGTERM stops it)")
        if options["webhook_url"]:
            url: str = options["webhook_url"]
            app.run_webhook(
                listen=options["listen"],
                port=options["port"],
                url_path=url.rstrip("/").rsplit("/", 1)[-1],
                webhook_url=url,
                stop_signals=stop,
            )
        else:
            app.run_polling(stop_signals=stop, drop_pending_updates=False)
        self.stdout.write("Stroke AID bot: stopped")
