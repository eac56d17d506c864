"""The learned case-level etiology model of a training run: fitted leak-free, scored on the
run's test split beside the vote and the TOAST rules, stored beside the U-Net weights, and
applied at prediction time (``etiology.reasoning.case_model`` is the pure part).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.utils.translation import gettext as _

from cases import storage
from etiology.models import Workup
from etiology.reasoning.case_model import CaseModel, bootstrap_f1, case_features, fit_case_model
from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.study import study_pattern
from etiology.reasoning.toast import toast_rules
from etiology.reasoning.workup import FIELD_NAMES, empty_workup
from inference.ml.data import CaseArrays
from inference.ml.predictor import Predictor

logger = logging.getLogger(__name__)

#: Fewer training cases than this fit no case model (the vote stays the answer).
MIN_CASES = 8

_cache: dict[tuple[str, str], CaseModel] = {}
_cache_lock = threading.Lock()


def _workups(case_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = Workup.objects.filter(case_id__in=[int(i) for i in case_ids if str(i).isdigit()])
    out = {str(i): empty_workup() for i in case_ids}
    for row in rows:
        out[str(row.case_id)] = {name: getattr(row, name) for name in FIELD_NAMES}
    return out


def _pattern(labels: Any, case: CaseArrays) -> LesionPattern:
    pattern, _ = study_pattern(
        labels, volumes=case.volumes, spacing=case.spacing, affine_zyx=case.affine
    )
    return pattern


def case_model_fit(
    *,
    fit_cases: Sequence[CaseArrays],
    test_cases: Sequence[CaseArrays],
    predictor: Predictor,
    names: dict[int, str],
    note: Callable[[str], None],
) -> CaseModel | None:
    """Fits the case model on ``fit_cases`` (their approved masks' patterns + work-up: the
    U-Net's predictions of its own training cases are never used) and scores it, the vote
    and the TOAST rules on ``test_cases`` with the U-Net's predictions. None when there is
    too little to fit on."""
    usable = [
        c for c in fit_cases if c.mask is not None and c.etiology in names and c.etiology_known
    ]
    if len(usable) < MIN_CASES or len({c.etiology for c in usable}) < 2:
        note(
            _("No case-level model: it needs %(n)d cases of at least two etiologies.")
            % {"n": MIN_CASES}
        )
        return None
    workups = _workups([c.case_id for c in [*usable, *test_cases]])
    patterns = {c.case_id: _pattern(c.mask, c) for c in usable}
    labels = [names[c.etiology] for c in usable if c.etiology is not None]
    ids = [c.case_id for c in usable]
    model = fit_case_model(
        [case_features(patterns[i], workups[i]) for i in ids],
        labels,
        uses_workup=True,
        case_ids=ids,
    )
    imaging = fit_case_model(
        [case_features(patterns[i], None) for i in ids], labels, uses_workup=False
    )
    model.metrics = _test_metrics(
        model=model,
        imaging=imaging,
        cases=[c for c in test_cases if c.etiology in names and c.mask is not None],
        workups=workups,
        predictor=predictor,
        names=names,
    )
    note(_("Case-level model fitted on %(n)d cases.") % {"n": len(usable)})
    return model


def _test_metrics(
    *,
    model: CaseModel,
    imaging: CaseModel,
    cases: Sequence[CaseArrays],
    workups: dict[str, dict[str, Any]],
    predictor: Predictor,
    names: dict[int, str],
) -> dict[str, Any]:
    if not cases:
        return {"test_cases": 0}
    classes = sorted(set(names.values()))
    truth: list[str] = []
    answers: dict[str, list[str | None]] = {
        "segmentation_vote": [],
        "toast_rules": [],
        "combined": [],
        "combined_imaging_only": [],
        "combined_true_masks": [],
    }
    for case in cases:
        assert case.etiology is not None and case.mask is not None
        out = predictor.predict(case.volumes, case.spacing)
        pattern = _pattern(out.label_volume, case)
        workup = workups[case.case_id]
        truth.append(names[case.etiology])
        answers["segmentation_vote"].append(names.get(out.etiology) if out.etiology else None)
        answers["toast_rules"].append(
            toast_rules(pattern if pattern.count else None, workup).etiology
        )
        answers["combined"].append(model.answer(case_features(pattern, workup))["etiology"])
        answers["combined_imaging_only"].append(
            imaging.answer(case_features(pattern, None))["etiology"]
        )
        true_pattern = _pattern(case.mask, case)
        answers["combined_true_masks"].append(
            model.answer(case_features(true_pattern, workup))["etiology"]
        )
    scores = {k: bootstrap_f1(truth, v, classes) for k, v in answers.items()}
    confusion = {
        k: _confusion(truth, v, classes) for k, v in answers.items() if k != "combined_true_masks"
    }
    return {
        "test_cases": len(cases),
        "classes": classes,
        "macro_f1": scores,
        "confusion": confusion,
        # What predicted masks cost the learned model against the approved masks' patterns.
        "feature_gap": scores["combined_true_masks"]["f1"] - scores["combined"]["f1"],
    }


def _confusion(truth: list[str], pred: list[str | None], classes: list[str]) -> list[list[int]]:
    """Rows: truth; columns: prediction, last column = no answer."""
    index = {c: i for i, c in enumerate(classes)}
    table = [[0] * (len(classes) + 1) for _ in classes]
    for t, p in zip(truth, pred, strict=True):
        table[index[t]][index.get(p, len(classes)) if p is not None else len(classes)] += 1
    return table


def case_model_store(model: CaseModel, *, run_id: int) -> tuple[str, str]:
    """Writes the model file (inside the caller's ``storage.transactional()``)."""
    data = model.to_bytes()
    key = storage.model_key(name=f"run{run_id}-case-model-{uuid.uuid4().hex[:12]}.pkl")
    storage.write_bytes(key, data)
    return key, hashlib.sha256(data).hexdigest()


def case_model_load(key: str, sha256: str) -> CaseModel | None:
    """The stored case model (cached per process), or None when missing or corrupt."""
    if not key:
        return None
    with _cache_lock:
        cached = _cache.get((key, sha256))
    if cached is not None:
        return cached
    try:
        data = storage.read_bytes(key)
        if hashlib.sha256(data).hexdigest() != sha256:
            logger.error("case model %s: checksum mismatch", key)
            return None
        model = CaseModel.from_bytes(data)
    except Exception:
        logger.exception("case model %s cannot be loaded", key)
        return None
    with _cache_lock:
        _cache[(key, sha256)] = model
    return model
