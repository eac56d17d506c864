"""``manage.py serve``: task workers plus uvicorn (HTTP + websockets), stopped together.

Starts two django-q2 clusters as child processes, ``qcluster`` for the default queue
(ingestion, prediction, export) and one with ``Q_CLUSTER_NAME=training`` for training runs
(so a long training never blocks a prediction), then the ASGI server (uvicorn,
``strokeaid_site.server``: ``WEB_CONCURRENCY`` processes, by default one per core on
PostgreSQL, see ``default_web_processes``) in the foreground. SIGINT and SIGTERM
are forwarded to every child; when any child ends, the others are stopped too, so no
orphaned worker keeps running after the server is gone. Every ``REAP_INTERVAL`` seconds (and
once at start) jobs whose worker died are marked interrupted (``manage.py reap_jobs``), so a
killed worker never blocks training or a case's prediction for long.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from strokeaid_site.server import default_web_processes, server_command

STOP_TIMEOUT = 15.0
REAP_INTERVAL = 60.0


class Command(BaseCommand):
    help = "Serve Stroke AID: uvicorn (HTTP + websockets) and the django-q2 task workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-workers", action="store_true", help="serve HTTP only")
        parser.add_argument("--no-collectstatic", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_collectstatic"]:
            call_command("collectstatic", interactive=False, verbosity=0)
        # Files a killed server left behind (unreferenced volumes, stale upload spools).
        swept = io.StringIO()
        call_command("sweep_files", stdout=swept)
        self.stdout.write(swept.getvalue().splitlines()[-1])
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        env = {**os.environ}
        children: list[tuple[str, subprocess.Popen[bytes]]] = []
        if not options["no_workers"]:
            children.append(
                ("tasks", subprocess.Popen([sys.executable, manage, "qcluster"], env=env))
            )
            training_env = {**env, "Q_CLUSTER_NAME": settings.TRAINING_QUEUE}
            children.append(
                (
                    "training",
                    subprocess.Popen([sys.executable, manage, "qcluster"], env=training_env),
                )
            )
        host, port = options["host"], str(options["port"])
        env.setdefault(
            "WEB_CONCURRENCY",
            str(
                default_web_processes(
                    sqlite=settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
                )
            ),
        )
        web = subprocess.Popen(server_command(host=host, port=int(port)), env=env)
        children.append(("web", web))
        shown = f"[{host}]" if ":" in host else host
        self.stdout.write(self.style.SUCCESS(f"Stroke AID is serving at http://{shown}:{port}/"))
        # The Telegram bot (bot.telegram, a REST client of this server) runs beside it when a
        # token is configured; it is optional, so its ending never stops the server.
        bot: subprocess.Popen[bytes] | None = None
        if settings.STROKEAID.get("TELEGRAM_BOT_TOKEN"):
            bot_env = {**env}
            bot_env.setdefault("STROKEAID_API_URL", f"http://{shown}:{port}")
            bot = subprocess.Popen([sys.executable, manage, "telegram_bot"], env=bot_env)
            self.stdout.write("The Stroke AID Telegram bot is running beside it.")
        else:
            self.stdout.write(
                "Telegram bot: off (set TELEGRAM_BOT_TOKEN=<token from @BotFather> to run it)."
            )
        self.stdout.write("Press Ctrl+C to stop the server and its workers.")

        stopping = False

        def _forward(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True
            # SIGTERM rather than the signal received: a child started from a background shell
            # ignores SIGINT, and both uvicorn and qcluster shut down cleanly on SIGTERM.
            for _name, child in children:
                if child.poll() is None:
                    child.terminate()
            if bot is not None and bot.poll() is None:
                bot.terminate()

        previous = {s: signal.signal(s, _forward) for s in (signal.SIGINT, signal.SIGTERM)}
        next_reap = 0.0
        try:
            while not stopping and all(child.poll() is None for _n, child in children):
                if not options["no_workers"] and time.monotonic() >= next_reap:
                    next_reap = time.monotonic() + REAP_INTERVAL
                    _reap(self)
                time.sleep(0.5)
            ended = [name for name, child in children if child.poll() is not None]
            if ended and not stopping:
                self.stderr.write(f"{', '.join(ended)} stopped; stopping the others.")
        finally:
            _stop_all(children + ([("bot", bot)] if bot is not None else []))
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        code = web.returncode
        if code not in (0, None, -signal.SIGINT, -signal.SIGTERM) and not stopping:
            sys.exit(code)


def _reap(command: BaseCommand) -> None:
    """One pass of the reaper; a failure (database restarting) is logged, never fatal."""
    from django.db import connections

    from inference.services import jobs_reap_stale_all

    try:
        reaped = {kind: ids for kind, ids in jobs_reap_stale_all().items() if ids}
        if reaped:
            command.stderr.write(f"marked jobs of stopped workers as interrupted: {reaped}")
    except Exception as exc:  # noqa: BLE001 - the server keeps serving; the next pass retries
        command.stderr.write(f"reaping stale jobs failed: {exc}")
    finally:
        connections.close_all()


def _stop_all(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM, a grace period for running tasks to finish their step, then SIGKILL."""
    for _name, child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for _name, child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
