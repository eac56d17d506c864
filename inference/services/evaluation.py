"""Evaluate a registered model on a split of a dataset snapshot (the ``evaluate`` command)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from tqdm import tqdm

from cases.models import Label
from inference.ml.trainer import evaluate
from inference.models import DatasetSnapshot, ModelVersion
from inference.services.dataset import dataset_case_arrays
from inference.services.prediction import predictor_for
from inference.services.training import _metrics_from
from strokeaid_site.errors import ApplicationError


def model_evaluate(
    *, model: ModelVersion, dataset: DatasetSnapshot, split: str, progress: bool = False
) -> dict[str, Any]:
    """Dice per label, lesion-wise detection and case-level etiology metrics on ``split``.

    Raises:
        ApplicationError: the split is empty.
    """
    cases = dataset_case_arrays(snapshot=dataset, split=split)
    if not cases:
        raise ApplicationError(_("The %(split)s split is empty.") % {"split": split})
    predictor = predictor_for(model)
    iterable = tqdm(cases, desc=f"evaluate {split}") if progress else cases
    raw = evaluate(predictor, list(iterable), predictor.spec)
    names = {lab.value: lab.name for lab in Label.objects.filter(label_set=model.label_set)}
    result = _metrics_from(raw, names)
    result.update({"model": model.pk, "dataset": dataset.pk, "split": split, "cases": len(cases)})
    return result
