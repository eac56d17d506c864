"""The de-identified header summary stored with a series."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .deid import (
    deidentification_summary,
    uid_remap,
)
from .slices import DicomSlice

_SUMMARY_KEYWORDS = (
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "MagneticFieldStrength",
    "SOPClassUID",
    "ImageType",
    "SeriesNumber",
    "BodyPartExamined",
    "PatientPosition",
    "PatientAge",
    "PatientSex",
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "MRAcquisitionType",
    "SequenceName",
    "RepetitionTime",
    "EchoTime",
    "InversionTime",
    "FlipAngle",
    "EchoTrainLength",
    "SliceThickness",
    "SpacingBetweenSlices",
    "KVP",
    "ConvolutionKernel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "ProtocolName",
    "StudyDescription",
    "BurnedInAnnotation",
    "PatientIdentityRemoved",
)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of a decoded DICOM value (DS/IS become float/int, bytes are dropped)."""
    if value is None or isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, list | tuple | MultiValue):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float | Decimal):
        out = float(value)
        return out if np.isfinite(out) else None
    return str(value)


def header_summary(
    ds: Dataset,
    *,
    members: list[DicomSlice],
    secret: str | bytes,
    series_uid: str,
    array: np.ndarray,
    b_values: list[float],
    description: str,
) -> dict[str, Any]:
    """The allow-listed, de-identified header kept in ``Series.header``.

    ``ds`` must already be de-identified (UIDs re-mapped). Per-slice lists are in stored slice
    order (index z), so a DICOM SEG export can reference the source instances: remapped
    SOPInstanceUID (with the frame number for multi-frame sources) and ImagePositionPatient.
    """
    summary: dict[str, Any] = {}
    for keyword in _SUMMARY_KEYWORDS:
        if keyword in ds:
            value = _jsonable(ds[keyword].value)
            if value not in (None, "", []):
                summary[keyword] = value
    summary["SeriesInstanceUID"] = series_uid
    summary.setdefault("StudyInstanceUID", uid_remap(members[0].study_uid, secret=secret))
    summary["SeriesDescription"] = description
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        summary["TransferSyntaxUID"] = str(meta.TransferSyntaxUID)
    if b_values:
        summary["DiffusionBValue"] = max(b_values)
        summary["b_values"] = [float(b) for b in b_values]
    summary["per_slice"] = {
        "SOPInstanceUID": [uid_remap(m.sop_uid, secret=secret) for m in members],
        "ImagePositionPatient": [[round(float(v), 6) for v in m.ipp] for m in members],
        "frame": [m.frame + 1 for m in members] if any(m.frame for m in members) else None,
        "RescaleSlope": sorted({m.slope for m in members}),
        "RescaleIntercept": sorted({m.intercept for m in members}),
    }
    summary["stored_dtype"] = str(array.dtype)
    summary["deidentification"] = deidentification_summary()
    return summary
