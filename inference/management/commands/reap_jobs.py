"""``manage.py reap_jobs``: mark training runs, predictions and exports whose worker died as
interrupted (run by the worker entry point, the Kubernetes CronJob and ``serve``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand

from inference.services import jobs_reap_stale_all


class Command(BaseCommand):
    help = "Mark jobs stuck in 'running' or 'queued' whose worker is gone as interrupted."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--stale-seconds",
            type=float,
            default=None,
            help="heartbeat age that counts as dead (default: STROKEAID_JOB_STALE_SECONDS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        seconds = options["stale_seconds"]
        reaped = jobs_reap_stale_all(
            older_than=timedelta(seconds=seconds) if seconds is not None else None
        )
        for kind, ids in reaped.items():
            self.stdout.write(f"interrupted {kind}: {ids or 'none'}")
