"""Small readers of DICOM header values that the DICOM modules share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from strokeaid_site.errors import ApplicationError


def bad_file(message: str, name: str, **extra: Any) -> ApplicationError:
    return ApplicationError(message, {"file": name, **extra})


def header_floats(value: Any, count: int) -> np.ndarray | None:
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.shape != (count,) or not np.isfinite(arr).all():
        return None
    return arr


def float_or(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if np.isfinite(out) else default


def header_uids(ds: Dataset) -> tuple[str, str, str, str]:
    return (
        str(ds.get("SeriesInstanceUID", "") or ""),
        str(ds.get("StudyInstanceUID", "") or ""),
        str(ds.get("SOPInstanceUID", "") or ""),
        str(ds.get("FrameOfReferenceUID", "") or ""),
    )


def group_value(groups: Iterable[Dataset | None], seq: str, attr: str) -> Any:
    """``attr`` of the first item of ``seq`` in the first functional group holding it."""
    for group in groups:
        if group is None or seq not in group or not group[seq].value:
            continue
        item = group[seq].value[0]
        if attr in item:
            return item[attr].value
    return None
