"""Writes of the inference app (datasets, training runs, model registry, predictions, demo).

Other apps import from here: ``demo_model_ensure``, ``prediction_request``,
``training_run_start``, ``model_activate`` (reads: ``inference.selectors``).
"""

from datetime import timedelta

from inference.exports.services import exports_reap_stale
from inference.services.dataset import dataset_case_arrays, dataset_snapshot_create
from inference.services.demo import demo_model_ensure
from inference.services.prediction import (
    prediction_execute,
    prediction_label_volume,
    prediction_request,
    predictions_reap_stale,
)
from inference.services.registry import model_activate, model_version_register
from inference.services.training import (
    training_run_execute,
    training_run_start,
    training_runs_reap_stale,
)


def jobs_reap_stale_all(*, older_than: timedelta | None = None) -> dict[str, list[int]]:
    """Reaps every kind of inference job whose worker is gone; returns the ids per kind."""
    return {
        "training runs": training_runs_reap_stale(stale_after=older_than),
        "predictions": predictions_reap_stale(older_than=older_than),
        "exports": exports_reap_stale(older_than=older_than),
    }


__all__ = [
    "dataset_case_arrays",
    "dataset_snapshot_create",
    "demo_model_ensure",
    "jobs_reap_stale_all",
    "model_activate",
    "model_version_register",
    "prediction_execute",
    "prediction_label_volume",
    "prediction_request",
    "training_run_execute",
    "training_run_start",
    "training_runs_reap_stale",
]
