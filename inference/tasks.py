"""django-q2 tasks of the inference app: they take ids and call the services."""

from __future__ import annotations

from inference.services.prediction import prediction_execute as _prediction_execute
from inference.services.training import training_run_execute as _training_run_execute


def training_run_execute(run_id: int) -> str:
    """Training cluster task (``Q_CLUSTER_NAME=training manage.py qcluster``)."""
    run = _training_run_execute(run_id=run_id)
    return str(run.status)


def prediction_execute(job_id: int) -> str:
    """Default cluster task: predict one case."""
    job = _prediction_execute(job_id=job_id)
    return str(job.status)
