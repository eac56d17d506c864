"""The learned case-level etiology model: regularised multinomial logistic regression over the
lesion pattern and the work-up (scikit-learn), with a per-case explanation.

Leakage: the U-Net has memorised its training cases, so features computed from its
predictions on them are better than they will ever be on a new patient. The model is
therefore FITTED on features from the approved masks (the truth the U-Net learnt from,
equally available for every case) and the work-up, never on predictions or vote shares,
and APPLIED to the same features computed from the predicted mask. The gap between the two
is measured on held-out cases at registration (``metrics["feature_gap"]``).

A linear model explains itself: the effect of feature ``j`` on the chosen etiology ``k`` is
``w_kj * z_j - mean_c(w_cj * z_j)`` (``z`` the standardised value), the amount the feature
moved the log-odds of ``k`` against the other etiologies.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.workup import empty_workup

VERSION = 1
#: Work-up answers as model inputs: yes +1, no -1, unknown 0.
_TRISTATE = (
    "atrial_fibrillation",
    "cardiac_source",
    "stenosis_50",
    "lacunar_syndrome",
)


def workup_features(workup: Mapping[str, Any]) -> dict[str, float]:
    """The work-up as numbers (unknown = 0, the "no information" value)."""
    out = {
        f"workup_{k}": (1.0 if workup.get(k) is True else -1.0 if workup.get(k) is False else 0.0)
        for k in _TRISTATE
    }
    out["workup_other_cause"] = 1.0 if workup.get("other_cause") else 0.0
    complete = workup.get("vessel_imaging") is True and workup.get("cardiac_workup") is True
    out["workup_complete"] = 1.0 if complete else 0.0
    age = workup.get("age")
    out["workup_age"] = (float(age) - 65.0) / 15.0 if isinstance(age, int) else 0.0
    nihss = workup.get("nihss")
    out["workup_nihss"] = float(nihss) / 10.0 if isinstance(nihss, int) else 0.0
    return out


def case_features(
    pattern: LesionPattern | None, workup: Mapping[str, Any] | None
) -> dict[str, float]:
    """Pattern features, plus work-up features when ``workup`` is given (``None``: the
    imaging-only model)."""
    features = (pattern or LesionPattern()).features()
    if workup is not None:
        features.update(workup_features(workup))
    return features


@dataclass
class CaseModel:
    """A fitted case model and what it was fitted on."""

    classes: list[str]
    feature_names: list[str]
    mean: npt.NDArray[np.float64]
    scale: npt.NDArray[np.float64]
    estimator: Any
    uses_workup: bool
    n_train: int
    feature_source: str = "approved_masks"
    metrics: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION
    #: ``{case id: feature row}`` the model was fitted on (audit of the leak-free fit).
    training_rows: dict[str, dict[str, float]] = field(default_factory=dict)

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> npt.NDArray[np.float64]:
        x = np.array([[row.get(f, 0.0) for f in self.feature_names] for row in rows], dtype=float)
        return (x - self.mean) / self.scale

    def predict_proba(self, rows: Sequence[Mapping[str, float]]) -> npt.NDArray[np.float64]:
        """Class probabilities ``(n, len(classes))``."""
        proba: npt.NDArray[np.float64] = self.estimator.predict_proba(self._matrix(rows))
        return proba

    def explain(self, row: Mapping[str, float], top: int = 5) -> list[dict[str, Any]]:
        """The features that moved the answer most: ``{"feature", "value", "effect"}``,
        ``effect`` in log-odds of the chosen etiology against the others."""
        z = self._matrix([row])[0]
        proba = self.predict_proba([row])[0]
        k = int(np.argmax(proba))
        coef = np.asarray(self.estimator.coef_, dtype=float)
        if coef.shape[0] == 1:  # two classes: scikit-learn keeps one row (class 1 vs 0)
            coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        contributions = coef * z  # (classes, features)
        effect = contributions[k] - contributions.mean(axis=0)
        order = np.argsort(-np.abs(effect))[:top]
        return [
            {
                "feature": self.feature_names[j],
                "value": float(row.get(self.feature_names[j], 0.0)),
                "effect": round(float(effect[j]), 3),
            }
            for j in order
            if abs(effect[j]) > 1e-6
        ]

    def answer(self, row: Mapping[str, float]) -> dict[str, Any]:
        """``{"etiology", "probabilities", "explanation"}`` (the REST ``combined`` shape)."""
        proba = self.predict_proba([row])[0]
        k = int(np.argmax(proba))
        return {
            "etiology": self.classes[k],
            "confidence": float(proba[k]),
            "probabilities": {c: float(p) for c, p in zip(self.classes, proba, strict=True)},
            "explanation": self.explain(row),
        }

    def describe(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "estimator": type(self.estimator).__name__,
            "classes": list(self.classes),
            "features": list(self.feature_names),
            "uses_workup": self.uses_workup,
            "feature_source": self.feature_source,
            "n_train": self.n_train,
            "metrics": dict(self.metrics),
        }

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        pickle.dump(self, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CaseModel:
        """Load a model written by :meth:`to_bytes` (only files this platform wrote: the
        registry checks their SHA-256 before)."""
        model = pickle.loads(data)  # noqa: S301 - our own checksummed artefact
        if not isinstance(model, cls) or model.version != VERSION:
            raise ValueError("not a case model of this version")
        return model


def fit_case_model(
    rows: Sequence[Mapping[str, float]],
    labels: Sequence[str],
    *,
    uses_workup: bool,
    c: float = 1.0,
    feature_source: str = "approved_masks",
    case_ids: Sequence[str] | None = None,
) -> CaseModel:
    """Fit the model on feature rows and their confirmed etiologies.

    Raises:
        ValueError: fewer than two classes or no rows.
    """
    from sklearn.linear_model import LogisticRegression

    if not rows or len(set(labels)) < 2:
        raise ValueError("a case model needs cases of at least two etiologies")
    names = sorted({k for row in rows for k in row})
    x = np.array([[row.get(f, 0.0) for f in names] for row in rows], dtype=float)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    estimator = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
    estimator.fit((x - mean) / scale, list(labels))
    return CaseModel(
        classes=[str(k) for k in estimator.classes_],
        feature_names=names,
        mean=mean,
        scale=scale,
        estimator=estimator,
        uses_workup=uses_workup,
        n_train=len(rows),
        feature_source=feature_source,
        training_rows=(
            {str(i): dict(r) for i, r in zip(case_ids, rows, strict=True)} if case_ids else {}
        ),
    )


def macro_f1(truth: Sequence[str], pred: Sequence[str | None], classes: Sequence[str]) -> float:
    """Macro-F1 over ``classes`` (a missing answer counts as wrong)."""
    scores = []
    for c in classes:
        tp = sum(1 for t, p in zip(truth, pred, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(truth, pred, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(truth, pred, strict=True) if t == c and p != c)
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def bootstrap_f1(
    truth: Sequence[str],
    pred: Sequence[str | None],
    classes: Sequence[str],
    *,
    rounds: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Macro-F1 with its bootstrap 95 % interval (cases resampled with replacement)."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    point = macro_f1(truth, pred, classes)
    if n == 0:
        return {"f1": 0.0, "low": 0.0, "high": 0.0, "n": 0}
    samples = []
    for _ in range(rounds):
        idx = rng.integers(0, n, n)
        samples.append(macro_f1([truth[i] for i in idx], [pred[i] for i in idx], classes))
    low, high = np.percentile(samples, [2.5, 97.5])
    accuracy = float(np.mean([t == p for t, p in zip(truth, pred, strict=True)]))
    return {"f1": point, "low": float(low), "high": float(high), "n": n, "accuracy": accuracy}


__all__ = [
    "CaseModel",
    "bootstrap_f1",
    "case_features",
    "empty_workup",
    "fit_case_model",
    "macro_f1",
    "workup_features",
]
