"""Writes of the inference app (datasets, training runs, model registry, predictions, demo).

Other apps import from here: ``demo_model_ensure``, ``prediction_request``,
``training_run_start``, ``model_activate``, ``model_active_get``.
"""

from inference.services.dataset import dataset_case_arrays, dataset_snapshot_create
from inference.services.demo import demo_model_ensure
from inference.services.prediction import (
    prediction_execute,
    prediction_label_volume,
    prediction_request,
)
from inference.services.registry import model_activate, model_active_get, model_version_register
from inference.services.training import (
    training_run_execute,
    training_run_start,
    training_runs_reap_stale,
)

__all__ = [
    "dataset_case_arrays",
    "dataset_snapshot_create",
    "demo_model_ensure",
    "model_activate",
    "model_active_get",
    "model_version_register",
    "prediction_execute",
    "prediction_label_volume",
    "prediction_request",
    "training_run_execute",
    "training_run_start",
    "training_runs_reap_stale",
]
