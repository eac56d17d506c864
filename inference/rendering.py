"""File renderings of predictions (NIfTI label volumes)."""

from __future__ import annotations

import gzip
from typing import Any

import nibabel as nib
import numpy as np


def label_volume_nifti_gz(volume: np.ndarray, *, affine: Any) -> bytes:
    """A uint8 (z, y, x) label volume as gzipped NIfTI-1 with the series' affine.

    Same layout as the series' ``volume.nii.gz`` (array transposed to (x, y, z), affine of
    the reference series, mm units), so viewers overlay it without resampling.
    """
    matrix = np.asarray(affine, dtype=np.float64)
    image = nib.Nifti1Image(np.asarray(volume, dtype=np.uint8).transpose(2, 1, 0), matrix)
    image.header.set_xyzt_units("mm")
    image.set_qform(matrix, code=1)
    image.set_sform(matrix, code=1)
    image.header["intent_name"] = b"labels"
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)
