"""``manage.py reap_training_runs``: mark runs whose worker died as interrupted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from inference.services import training_runs_reap_stale


class Command(BaseCommand):
    help = "Mark training runs stuck in 'running' whose task is gone as interrupted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--stale-minutes", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        minutes = options["stale_minutes"]
        reaped = training_runs_reap_stale(
            stale_after=timedelta(minutes=minutes) if minutes is not None else None
        )
        self.stdout.write(f"interrupted runs: {reaped or 'none'}")
