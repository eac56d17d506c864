"""Segmentation, detection, classification, agreement and calibration metrics (pure numpy).

Conventions (chosen so that review pages never show NaN):

* Dice/IoU of a label absent from BOTH masks is 1.0 — the two agree perfectly that there is
  no such lesion; absent from one mask only gives 0.0.
* Lesion-wise F1 with no lesion in either mask is 1.0, with lesions in only one mask 0.0.
* Kappa with chance agreement 1 (every rating identical) is 1.0 when observed agreement is
  perfect, else 0.0.
* Connected components are 3-D with full (26-) connectivity by default, as in ISLES-style
  lesion-wise evaluation: voxels touching by a corner belong to one lesion.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

IntArray = npt.NDArray[np.int64]


def structure(connectivity: int = 26) -> npt.NDArray[np.bool_]:
    """3-D structuring element for 6-, 18- or 26-connectivity."""
    rank = {6: 1, 18: 2, 26: 3}.get(connectivity)
    if rank is None:
        raise ValueError("connectivity must be 6, 18 or 26")
    return np.asarray(ndimage.generate_binary_structure(3, rank), dtype=bool)


def connected_components(
    mask: npt.NDArray[Any], *, connectivity: int = 26
) -> tuple[npt.NDArray[np.int32], int]:
    """Label the connected non-zero regions of a 3-D mask: ``(labels, count)``."""
    labelled, count = ndimage.label(np.asarray(mask) > 0, structure=structure(connectivity))
    return labelled.astype(np.int32, copy=False), int(count)


def voxel_volume_ml(spacing: Sequence[float]) -> float:
    """Volume of one voxel in millilitres (spacing in mm; 1 ml = 1000 mm^3)."""
    return float(np.prod(np.asarray(spacing, dtype=np.float64))) / 1000.0


def volume_ml(mask: npt.NDArray[Any], spacing: Sequence[float], label: int | None = None) -> float:
    """Volume in ml of ``mask == label`` (or of all non-zero voxels when ``label`` is None)."""
    selected = (np.asarray(mask) != 0) if label is None else (np.asarray(mask) == label)
    return int(np.count_nonzero(selected)) * voxel_volume_ml(spacing)


# --------------------------------------------------------------------------- overlap


@dataclass(frozen=True)
class OverlapCounts:
    """Voxel counts of one label: true positives, false positives, false negatives."""

    tp: int
    fp: int
    fn: int

    @property
    def dice(self) -> float:
        """``2TP / (2TP + FP + FN)``; 1.0 when the label is in neither mask."""
        denom = 2 * self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else 2 * self.tp / denom

    @property
    def iou(self) -> float:
        """``TP / (TP + FP + FN)``; 1.0 when the label is in neither mask."""
        denom = self.tp + self.fp + self.fn
        return 1.0 if denom == 0 else self.tp / denom

    def __add__(self, other: OverlapCounts) -> OverlapCounts:
        """Sum counts (aggregate a label over several cases)."""
        return OverlapCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)


def overlap_counts(
    pred: npt.NDArray[Any], ref: npt.NDArray[Any], labels: Iterable[int]
) -> dict[int, OverlapCounts]:
    """Per-label TP/FP/FN voxel counts between two label volumes of the same shape.

    One ``bincount`` over the joint (pred, ref) values, so cost does not grow with labels.
    """
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    r = np.asarray(ref).reshape(-1).astype(np.int64)
    if p.shape != r.shape:
        raise ValueError("masks must have the same shape")
    labels = list(labels)
    top = int(max([*labels, int(p.max(initial=0)), int(r.max(initial=0))])) + 1
    joint = np.bincount(p * top + r, minlength=top * top).reshape(top, top)
    out = {}
    for lab in labels:
        tp = int(joint[lab, lab])
        out[lab] = OverlapCounts(tp, int(joint[lab, :].sum()) - tp, int(joint[:, lab].sum()) - tp)
    return out


def dice_per_label(
    pred: npt.NDArray[Any], ref: npt.NDArray[Any], labels: Iterable[int]
) -> dict[int, float]:
    """Dice per label (1.0 when a label is absent from both masks)."""
    return {k: c.dice for k, c in overlap_counts(pred, ref, labels).items()}


def iou_per_label(
    pred: npt.NDArray[Any], ref: npt.NDArray[Any], labels: Iterable[int]
) -> dict[int, float]:
    """IoU (Jaccard) per label (1.0 when a label is absent from both masks)."""
    return {k: c.iou for k, c in overlap_counts(pred, ref, labels).items()}


def binary_dice(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    """Dice of the non-zero (lesion) voxels of two masks; 1.0 when both are empty."""
    return overlap_counts(np.asarray(a) != 0, np.asarray(b) != 0, [1])[1].dice


# --------------------------------------------------------------------------- lesion-wise


@dataclass(frozen=True)
class LesionDetection:
    """Lesion-wise detection counts.

    A predicted lesion is a true positive when it overlaps any reference lesion (>= the
    minimum overlap in voxels); a reference lesion is detected when any predicted lesion
    overlaps it. Precision uses predicted lesions, recall reference lesions.

    Attributes:
        n_pred: predicted lesions.
        n_ref: reference lesions.
        tp_pred: predicted lesions overlapping a reference lesion.
        detected_ref: reference lesions overlapped by a prediction.
    """

    n_pred: int
    n_ref: int
    tp_pred: int
    detected_ref: int

    @property
    def false_positives(self) -> int:
        """Predicted lesions touching no reference lesion."""
        return self.n_pred - self.tp_pred

    @property
    def missed(self) -> int:
        """Reference lesions touched by no prediction."""
        return self.n_ref - self.detected_ref

    @property
    def precision(self) -> float:
        """``tp_pred / n_pred``; 1.0 without predicted lesions."""
        return 1.0 if self.n_pred == 0 else self.tp_pred / self.n_pred

    @property
    def recall(self) -> float:
        """``detected_ref / n_ref``; 1.0 without reference lesions."""
        return 1.0 if self.n_ref == 0 else self.detected_ref / self.n_ref

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 1.0 when neither mask has a lesion."""
        if self.n_pred == 0 and self.n_ref == 0:
            return 1.0
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def __add__(self, other: LesionDetection) -> LesionDetection:
        """Sum counts over cases."""
        return LesionDetection(
            self.n_pred + other.n_pred,
            self.n_ref + other.n_ref,
            self.tp_pred + other.tp_pred,
            self.detected_ref + other.detected_ref,
        )


def lesion_detection(
    pred: npt.NDArray[Any],
    ref: npt.NDArray[Any],
    *,
    label: int | None = None,
    connectivity: int = 26,
    min_overlap: int = 1,
) -> LesionDetection:
    """Lesion-wise detection between two 3-D masks.

    Args:
        pred: predicted label volume.
        ref: reference label volume.
        label: compare only this label; ``None`` compares any lesion (non-zero) voxels.
        connectivity: 6, 18 or 26.
        min_overlap: voxels of overlap needed to count as a hit.

    Returns:
        :class:`LesionDetection` counts.
    """
    p = np.asarray(pred)
    r = np.asarray(ref)
    p_bin = p != 0 if label is None else p == label
    r_bin = r != 0 if label is None else r == label
    p_lab, n_pred = connected_components(p_bin, connectivity=connectivity)
    r_lab, n_ref = connected_components(r_bin, connectivity=connectivity)
    both = p_bin & r_bin
    hits_pred = np.bincount(p_lab[both], minlength=n_pred + 1)[1:]
    hits_ref = np.bincount(r_lab[both], minlength=n_ref + 1)[1:]
    return LesionDetection(
        n_pred=n_pred,
        n_ref=n_ref,
        tp_pred=int((hits_pred >= min_overlap).sum()),
        detected_ref=int((hits_ref >= min_overlap).sum()),
    )


# --------------------------------------------------------------------------- classification


@dataclass(frozen=True)
class ClassificationReport:
    """Case-level etiology classification summary.

    Attributes:
        labels: label order of the matrix rows/columns.
        confusion: ``(L, L + 1)`` counts, rows = truth, columns = prediction; the last column
            counts cases with no prediction (no lesion found), which are always wrong.
        accuracy: correct / all cases (0.0 without cases).
        macro_f1: mean F1 over labels occurring in truth or prediction.
        per_label_f1: F1 per label (0.0 when the label has support or predictions but no hit).
        n_unpredicted: cases without prediction.
    """

    labels: list[Hashable]
    confusion: IntArray
    accuracy: float
    macro_f1: float
    per_label_f1: dict[Hashable, float] = field(default_factory=dict)
    n_unpredicted: int = 0


def confusion_matrix(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None], labels: Sequence[Hashable]
) -> IntArray:
    """Confusion counts ``(L, L + 1)``: rows truth, columns prediction, last column ``None``.

    Raises:
        ValueError: a true label or a non-None prediction not in ``labels``.
    """
    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred must have the same length")
    index = {lab: i for i, lab in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels) + 1), dtype=np.int64)
    for t, p in zip(y_true, y_pred, strict=True):
        if t not in index or (p is not None and p not in index):
            raise ValueError(f"label {t if t not in index else p} not in {list(labels)}")
        matrix[index[t], len(labels) if p is None else index[p]] += 1
    return matrix


def classification_report(
    y_true: Sequence[Hashable], y_pred: Sequence[Hashable | None], labels: Sequence[Hashable]
) -> ClassificationReport:
    """Accuracy, per-label and macro F1 and the confusion matrix of case-level etiology.

    Labels that occur neither in truth nor in prediction are left out of the macro mean:
    their F1 is undefined and counting them as 0 or 1 would move the score with the label
    set rather than the model.
    """
    matrix = confusion_matrix(y_true, y_pred, labels)
    n = int(matrix.sum())
    square = matrix[:, : len(labels)]
    tp = np.diag(square)
    support = matrix.sum(axis=1)
    predicted = square.sum(axis=0)
    per_label: dict[Hashable, float] = {}
    for i, lab in enumerate(labels):
        if support[i] == 0 and predicted[i] == 0:
            continue
        denom = support[i] + predicted[i]
        per_label[lab] = float(2 * tp[i] / denom) if denom else 0.0
    return ClassificationReport(
        labels=list(labels),
        confusion=matrix,
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_f1=float(np.mean(list(per_label.values()))) if per_label else 0.0,
        per_label_f1=per_label,
        n_unpredicted=int(matrix[:, -1].sum()),
    )


# --------------------------------------------------------------------------- agreement


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa between two raters: ``(p_o - p_e) / (1 - p_e)``."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same subjects")
    if not a:
        raise ValueError("no ratings")
    categories = sorted(set(a) | set(b), key=repr)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    table /= table.sum()
    p_o = float(np.trace(table))
    p_e = float(table.sum(axis=1) @ table.sum(axis=0))
    if p_e >= 1.0 - 1e-12:
        return 1.0 if p_o >= 1.0 - 1e-12 else 0.0
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa_from_counts(table: npt.NDArray[Any]) -> float:
    """Fleiss' kappa from ``(subjects, categories)`` counts with equal raters per subject."""
    counts = np.asarray(table, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise ValueError("table must be (subjects, categories) with at least one subject")
    raters = counts.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("every subject needs the same number (>= 2) of ratings")
    m = raters[0]
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = ((counts * counts).sum(axis=1) - m) / (m * (m - 1))
    p_bar = float(p_i.mean())
    p_e = float((p_j * p_j).sum())
    if p_e >= 1.0 - 1e-12:
        return 1.0 if p_bar >= 1.0 - 1e-12 else 0.0
    return (p_bar - p_e) / (1.0 - p_e)


def fleiss_kappa(ratings: Sequence[Sequence[Hashable]]) -> float:
    """Fleiss' kappa from per-subject rating lists (``ratings[i]`` = labels of subject i)."""
    categories = sorted({r for subject in ratings for r in subject}, key=repr)
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(ratings), len(categories)), dtype=np.int64)
    for i, subject in enumerate(ratings):
        for r in subject:
            table[i, index[r]] += 1
    return fleiss_kappa_from_counts(table)


def pairwise_dice(
    masks: Mapping[str, npt.NDArray[Any]], *, label: int | None = None
) -> dict[tuple[str, str], float]:
    """Dice between every pair of annotators' masks of one case.

    Args:
        masks: ``{annotator: label volume}``.
        label: compare this label only; ``None`` compares lesion (non-zero) voxels.

    Returns:
        ``{(annotator_a, annotator_b): dice}`` with ``a < b``.
    """
    out = {}
    for a, b in itertools.combinations(sorted(masks), 2):
        ma, mb = np.asarray(masks[a]), np.asarray(masks[b])
        if label is None:
            out[(a, b)] = binary_dice(ma, mb)
        else:
            out[(a, b)] = overlap_counts(ma, mb, [label])[label].dice
    return out


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin: ``(lower, upper]`` (the first bin includes 0)."""

    lower: float
    upper: float
    count: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    """Reliability diagram data plus expected/maximum calibration error.

    ``ece = sum_b n_b / N * |accuracy_b - confidence_b|``; ``mce`` is the largest gap.
    Empty bins have count 0 and NaN-free zeros and do not contribute.
    """

    bins: list[ReliabilityBin]
    ece: float
    mce: float


def calibration(
    confidences: Sequence[float], correct: Sequence[bool], *, n_bins: int = 10
) -> Calibration:
    """Bin predictions by confidence and compare with their accuracy.

    Args:
        confidences: predicted confidence in ``[0, 1]`` per case.
        correct: whether each prediction was right.
        n_bins: equal-width bins over ``[0, 1]``.

    Returns:
        :class:`Calibration`.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if conf.shape != ok.shape:
        raise ValueError("confidences and correct must have the same length")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # (lower, upper]: searchsorted "left" puts a value equal to an edge in the lower bin.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins: list[ReliabilityBin] = []
    ece = mce = 0.0
    n = max(1, conf.size)
    for b in range(n_bins):
        sel = which == b
        count = int(sel.sum())
        mean_conf = float(conf[sel].mean()) if count else 0.0
        acc = float(ok[sel].mean()) if count else 0.0
        bins.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, mean_conf, acc))
        if count:
            gap = abs(acc - mean_conf)
            ece += count / n * gap
            mce = max(mce, gap)
    return Calibration(bins=bins, ece=float(ece), mce=float(mce))


# --------------------------------------------------------------------------- intervals

#: Bootstrap resamples of an interval (percentile method).
BOOTSTRAP_DRAWS = 1000


def bootstrap_interval(
    statistic: Callable[[IntArray], float],
    n: int,
    *,
    draws: int = BOOTSTRAP_DRAWS,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of a statistic over ``n`` cases.

    ``statistic`` receives the case indices of one resample (drawn with replacement) and
    returns the statistic on those cases, so a pooled figure (a Dice of summed voxel
    counts, a macro-F1) is resampled the way it is computed. ``None`` with fewer than two
    cases, where no interval exists.
    """
    if n < 2:
        return None
    rng = rng if rng is not None else np.random.default_rng(0)
    values = np.fromiter(
        (statistic(rng.integers(0, n, size=n)) for _ in range(draws)), np.float64, draws
    )
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)
