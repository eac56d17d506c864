"""What DICOM reading makes: 2-D slices with geometry, skipped files, built volumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset

from .header import bad_file, float_or, header_floats, header_uids
from .kind import b_value_of


@dataclass
class DicomSlice:
    """One 2-D image (a file, or one frame of a multi-frame file) ready to be stacked."""

    file: str
    frame: int
    series_uid: str
    study_uid: str
    sop_uid: str
    for_uid: str
    ipp: np.ndarray
    iop: np.ndarray
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    slope: float
    intercept: float
    b_value: float | None
    pixels: np.ndarray
    dataset: Dataset
    has_geometry: bool = True


@dataclass
class Skipped:
    """A file that holds no usable image, left out of the upload with a reason."""

    file: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass
class BuiltVolume:
    """A de-identified volume ready to be stored as a series."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    kind: str
    series_uid: str
    study_uid: str
    description: str
    study_description: str
    header: dict[str, Any]
    quarantine_reason: str
    files: list[str] = field(default_factory=list)
    source: str = "dicom"


def single_slice(ds: Dataset, pixels: np.ndarray, name: str) -> DicomSlice:
    series_uid, study_uid, sop_uid, for_uid = header_uids(ds)
    if not series_uid:
        raise bad_file(_("The DICOM file has no SeriesInstanceUID."), name)
    ipp = header_floats(ds.get("ImagePositionPatient"), 3)
    iop = header_floats(ds.get("ImageOrientationPatient"), 6)
    spacing = header_floats(ds.get("PixelSpacing"), 2)
    has_geometry = ipp is not None and iop is not None and spacing is not None
    return DicomSlice(
        file=name,
        frame=0,
        series_uid=series_uid,
        study_uid=study_uid,
        sop_uid=sop_uid,
        for_uid=for_uid,
        ipp=ipp if ipp is not None else np.zeros(3),
        iop=iop if iop is not None else np.array([1.0, 0, 0, 0, 1, 0]),
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing is not None else (1, 1),
        rows=int(ds.Rows),
        cols=int(ds.Columns),
        slope=float_or(ds.get("RescaleSlope", 1), 1.0) or 1.0,
        intercept=float_or(ds.get("RescaleIntercept", 0), 0.0),
        b_value=b_value_of(ds),
        pixels=pixels,
        dataset=ds,
        has_geometry=has_geometry,
    )
