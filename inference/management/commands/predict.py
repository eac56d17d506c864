"""``manage.py predict --case ID``: predict one case with the active model in the foreground."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cases.selectors import case_get
from inference.models import JobStatus
from inference.selectors import model_active_get
from inference.services.prediction import prediction_execute, prediction_request
from strokeaid_site.errors import ApplicationError


class Command(BaseCommand):
    help = "Predict the etiology and lesion mask of one case with the active model."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--case", type=int, nargs="+", required=True, help="Case id(s).")

    def handle(self, *args: Any, **options: Any) -> None:
        model = model_active_get()
        if model is None:
            raise CommandError("No model is active: train one (manage.py train --activate).")
        # Command-line runs are attributed to the first superuser (jobs always have a requester).
        user = get_user_model().objects.filter(is_superuser=True).order_by("id").first()
        for case_id in tqdm(options["case"], desc="cases"):
            case = case_get(case_id=case_id)
            if case is None:
                raise CommandError(f"case {case_id} does not exist")
            try:
                job, _created = prediction_request(
                    user=user or case.created_by, case=case, model=model, enqueue=False
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            job = prediction_execute(job_id=job.pk)
            if job.status != JobStatus.DONE:
                raise CommandError(f"prediction {job.pk} failed: {job.error}")
            self.stdout.write(
                json.dumps(
                    {
                        "prediction": job.pk,
                        "case": case.code,
                        "etiology": job.etiology.name if job.etiology else None,
                        "confidence": job.confidence,
                        "probabilities": job.probabilities,
                        "volumes_ml": job.volumes_ml,
                        "lesions": job.lesions.get("count"),
                    }
                )
            )
