"""Checks before a mask is written: who may write it, its array against the series, its
labels against the case's etiology, the ``If-Match`` revision tag."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from accounts.roles import NEUROLOGIST, has_role
from cases.models import Case, Series
from cases.selectors import labels_active
from strokeaid_site.errors import ApplicationError, ForbiddenError

from ..models import Annotation


@dataclass(frozen=True)
class CheckedMask:
    """A validated label volume with its per-label voxel counts (background excluded)."""

    array: np.ndarray  # uint8, (z, y, x), C-contiguous
    counts: dict[int, int]


def mask_validate(*, series: Series, array: np.ndarray) -> CheckedMask:
    """Checks shape, type and label values of ``array``; returns it as uint8 with counts.

    One pass of ``np.bincount(minlength=256)`` both finds unknown values and counts voxels
    per label. Floats are accepted only when every value is a whole number (nnU-Net and many
    tools write labels as float); any other fraction is not a label.
    """
    shape = tuple(int(n) for n in series.shape)
    if array.ndim != 3:
        raise ApplicationError(_("A mask must be a 3-D volume."), {"shape": list(array.shape)})
    if tuple(array.shape) != shape:
        raise ApplicationError(
            _("The mask does not have the shape of the series."),
            {"expected": list(shape), "received": list(array.shape)},
        )
    if array.dtype != np.uint8:
        if array.dtype.kind == "f":
            if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
                raise ApplicationError(
                    _("A mask must hold whole label values, not fractions."),
                    {"dtype": str(array.dtype)},
                )
        elif array.dtype.kind not in "biu":
            raise ApplicationError(_("Unsupported mask data type."), {"dtype": str(array.dtype)})
        lo, hi = float(array.min()), float(array.max())
        if lo < 0 or hi > 255:
            raise ApplicationError(
                _("The mask contains values that are not labels of the active label set."),
                {"values": sorted({int(lo), int(hi)} - {0})},
            )
        array = array.astype(np.uint8)
    array = np.ascontiguousarray(array)
    counts = np.bincount(array.reshape(-1), minlength=256)
    allowed = np.zeros(256, dtype=bool)
    allowed[0] = True
    allowed[list(labels_active().values_list("value", flat=True))] = True
    unknown = np.flatnonzero((counts > 0) & ~allowed)
    if unknown.size:
        raise ApplicationError(
            _("The mask contains values that are not labels of the active label set."),
            {"values": [int(v) for v in unknown]},
        )
    present = np.flatnonzero(counts[1:]) + 1
    return CheckedMask(array=array, counts={int(v): int(counts[v]) for v in present})


def voxel_volume_ml(series: Series) -> float:
    """The volume of one voxel in millilitres (spacing is in mm; 1 ml = 1000 mm³)."""
    z, y, x = (float(s) for s in series.spacing)
    return z * y * x / 1000.0


def etiology_mismatch(*, case: Case, label_counts: dict[Any, int]) -> list[int]:
    """Label values in a mask that are not the confirmed etiology of ``case`` (sorted).

    One etiology per case: once the work-up has confirmed a case's etiology, every lesion of
    the case carries that label (the model learns etiology from these masks). An unconfirmed
    case is still in work-up, so any label is allowed (empty list).
    """
    if not case.confirmed or case.etiology_id is None:
        return []
    expected = case.etiology.value if case.etiology else None
    return sorted(int(v) for v, n in label_counts.items() if n and int(v) != expected)


def require_etiology_consistent(*, case: Case, label_counts: dict[Any, int], action: str) -> None:
    """Refuses (400) to submit or approve a mask whose labels contradict the case's confirmed
    etiology, naming the labels so the reviewer knows what to relabel."""
    wrong = etiology_mismatch(case=case, label_counts=label_counts)
    if not wrong:
        return
    labels = {label.value: label for label in labels_active()}
    expected = case.etiology
    assert expected is not None  # etiology_mismatch is empty without one
    found = ", ".join(labels[v].title if v in labels else str(v) for v in wrong)
    if action == "submit":
        message = _(
            "This mask has lesions labelled %(found)s, but the case's confirmed etiology is "
            "%(etiology)s (one etiology per case). Relabel those lesions, or correct the "
            "case's etiology, before submitting."
        )
    else:
        message = _(
            "This mask has lesions labelled %(found)s, but the case's confirmed etiology is "
            "%(etiology)s (one etiology per case). Return it for relabelling, or have the "
            "case's etiology corrected, before approving."
        )
    raise ApplicationError(
        message % {"found": found, "etiology": expected.title},
        {
            "field": "etiology",
            "etiology": expected.name,
            "mask_labels": [labels[v].name if v in labels else v for v in wrong],
        },
    )


def etag_matches(if_match: str, annotation: Annotation) -> bool:
    current = annotation.etag
    if current is None:
        return False
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == current.strip('"'):
            return True
    return False


def require_annotator(user: User) -> None:
    if not has_role(user, NEUROLOGIST):
        raise ForbiddenError(_("Only neurologists draw lesion masks."), {})


def require_own(*, user: User, annotation: Annotation) -> None:
    require_annotator(user)
    if annotation.is_consensus or annotation.annotator_id != user.pk:
        raise ForbiddenError(_("This is another annotator's mask."), {"annotation": annotation.pk})
