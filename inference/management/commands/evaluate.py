"""``manage.py evaluate --model ID --split val|test [--json]``: metrics of a model on a split."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inference.models import DatasetSnapshot, ModelVersion
from inference.services.evaluation import model_evaluate
from strokeaid_site.errors import ApplicationError


class Command(BaseCommand):
    help = "Evaluate a model version on a split of its dataset (or of --dataset)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--model", type=int, required=True)
        parser.add_argument("--split", choices=["train", "val", "test"], default="test")
        parser.add_argument(
            "--dataset", type=int, help="Dataset snapshot id (default: the model's)."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON only.")

    def handle(self, *args: Any, **options: Any) -> None:
        model = ModelVersion.objects.filter(pk=options["model"]).first()
        if model is None:
            raise CommandError(f"model {options['model']} does not exist")
        dataset = (
            DatasetSnapshot.objects.filter(pk=options["dataset"]).first()
            if options["dataset"]
            else model.dataset
        )
        if dataset is None:
            raise CommandError("no dataset: the model has none, pass --dataset")
        try:
            result = model_evaluate(
                model=model, dataset=dataset, split=options["split"], progress=not options["json"]
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"model {model.pk} on dataset {dataset.pk} / {options['split']} "
            f"({result['cases']} cases)"
        )
        rows = [("lesion Dice (mean)", result.get("dice_mean"))]
        rows += [(f"Dice {name}", v) for name, v in result.get("dice", {}).items()]
        rows += [
            (k.replace("_", " "), result.get(k))
            for k in (
                "lesion_f1",
                "lesion_precision",
                "lesion_recall",
                "case_accuracy",
                "case_macro_f1",
            )
        ]
        width = max(len(r[0]) for r in rows)
        for name, value in rows:
            shown = "–" if value is None else f"{value:.4f}"
            self.stdout.write(f"  {name.ljust(width)}  {shown}")
