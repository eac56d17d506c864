"""Annotation against prediction, voxel by voxel: the difference classes and one case's
numbers (pure: arrays in, numbers out; no database, no storage).

Conventions follow ``inference.ml.metrics`` (no NaN on a page): Dice/IoU of a label absent
from both masks is 1.0; lesion-wise F1 with no lesion in either mask is 1.0. Lesions are 3-D
connected components with 26-connectivity. Volumes are in ml (voxel volume = product of the
spacing in mm / 1000).

Difference classes (``difference_classes``), per voxel:

==  ===============  ===============================================================
0   none             background in both
1   agree            lesion in both with the same label (drawn in the label's colour)
2   annotator only   lesion in the annotation only (missed by the model)
3   model only       lesion in the prediction only (false positive of the model)
4   label differs    lesion in both, with different labels (etiology disagreement)
==  ===============  ===============================================================

With ``label`` given, classes are for that label alone (``mask == label``), so class 4 does
not occur.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from inference.ml import metrics

NONE, AGREE, ANNOTATOR_ONLY, MODEL_ONLY, LABEL_DIFFERS = 0, 1, 2, 3, 4


def difference_classes(
    annotation: npt.NDArray[Any], prediction: npt.NDArray[Any], *, label: int | None = None
) -> npt.NDArray[np.uint8]:
    """Voxel classes of the difference overlay (see the module docstring)."""
    a = np.asarray(annotation)
    p = np.asarray(prediction)
    if a.shape != p.shape:
        raise ValueError("annotation and prediction must have the same shape")
    if label is not None:
        a_in, p_in = a == label, p == label
        same = a_in & p_in
    else:
        a_in, p_in = a != 0, p != 0
        same = a_in & p_in & (a == p)
    out = np.zeros(a.shape, dtype=np.uint8)
    out[same] = AGREE
    out[a_in & ~p_in] = ANNOTATOR_ONLY
    out[p_in & ~a_in] = MODEL_ONLY
    if label is None:
        out[a_in & p_in & (a != p)] = LABEL_DIFFERS
    return out


def case_numbers(
    *,
    annotation: npt.NDArray[Any],
    prediction: npt.NDArray[Any],
    spacing: Any,
    labels: dict[int, str],
) -> dict[str, Any]:
    """Per-case numbers: Dice/IoU per label, lesion-wise detection, volumes per label (ml)."""
    counts = metrics.overlap_counts(prediction, annotation, list(labels))
    per_label = {}
    for value, name in labels.items():
        c = counts[value]
        det = metrics.lesion_detection(prediction, annotation, label=value)
        per_label[name] = {
            "dice": round(c.dice, 4),
            "iou": round(c.iou, 4),
            "present": bool(c.tp + c.fp + c.fn),
            "annotation_ml": round(metrics.volume_ml(annotation, spacing, value), 3),
            "prediction_ml": round(metrics.volume_ml(prediction, spacing, value), 3),
            "lesions": {
                "annotation": det.n_ref,
                "prediction": det.n_pred,
                "f1": round(det.f1, 4),
            },
        }
    det = metrics.lesion_detection(prediction, annotation)
    return {
        "labels": per_label,
        "lesion_dice": round(metrics.binary_dice(prediction, annotation), 4),
        "lesion_iou": round(
            metrics.overlap_counts(prediction != 0, annotation != 0, [1])[1].iou, 4
        ),
        "detection": {
            "annotation_lesions": det.n_ref,
            "predicted_lesions": det.n_pred,
            "true_positives": det.tp_pred,
            "false_positives": det.false_positives,
            "detected": det.detected_ref,
            "missed": det.missed,
            "precision": round(det.precision, 4),
            "recall": round(det.recall, 4),
            "f1": round(det.f1, 4),
        },
        "total_ml": {
            "annotation": round(metrics.volume_ml(annotation, spacing), 3),
            "prediction": round(metrics.volume_ml(prediction, spacing), 3),
        },
    }
