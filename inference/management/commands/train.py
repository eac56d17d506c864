"""``manage.py train``: build a dataset, train in the foreground with a progress bar, register."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from inference.models import JobStatus, ModelVersion
from inference.services import training_run_execute, training_run_start
from strokeaid_site.errors import ApplicationError


class Command(BaseCommand):
    help = "Train the U-Net synchronously on a new dataset snapshot and register the model."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument(
            "--cases",
            type=str,
            default="",
            help="Comma-separated case ids (default: confirmed cases with approved masks).",
        )
        parser.add_argument("--activate", action="store_true", help="Activate the new model.")
        parser.add_argument(
            "--params",
            type=str,
            default="{}",
            help="Extra hyper-parameters as JSON, e.g. '{\"batch_size\": 8}'.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        case_ids = [int(c) for c in options["cases"].split(",") if c.strip()] or None
        try:
            params = json.loads(options["params"])
            run, created = training_run_start(
                user=None,
                epochs=options["epochs"],
                case_ids=case_ids,
                params=params,
                activate=options["activate"],
                enqueue=False,
            )
        except (ValueError, ApplicationError) as exc:
            raise CommandError(getattr(exc, "message", str(exc))) from exc
        if not created:
            raise CommandError(f"training run {run.pk} is already {run.status}; wait for it")
        bar = tqdm(total=1000, desc=f"run {run.pk}", unit="‰")

        def progress(value: float) -> None:
            bar.n = int(value * 1000)
            bar.refresh()

        def epoch(report: Any) -> None:
            bar.set_postfix(
                epoch=report.epoch, loss=f"{report.train_loss:.4f}", score=f"{report.score:.3f}"
            )

        run = training_run_execute(run_id=run.pk, on_progress=progress, on_epoch=epoch)
        bar.close()
        if run.status != JobStatus.DONE:
            raise CommandError(f"training run {run.pk} {run.status}: {run.error}")
        model = ModelVersion.objects.get(run=run)
        self.stdout.write(
            self.style.SUCCESS(
                f"registered model {model.pk} ({model.name})"
                + (" [active]" if model.is_active else "")
                + (f" [unusable: {model.unusable_message}]" if not model.usable else "")
            )
        )
        self.stdout.write(json.dumps(model.metrics, indent=2))
