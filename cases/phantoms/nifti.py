"""NIfTI export of phantom volumes and masks (nibabel).

Axis convention: phantom arrays are (z, y, x) like a DICOM stack; NIfTI stores (x, y, z), so
arrays are transposed with ``.transpose(2, 1, 0)`` and written with :attr:`PhantomCase.affine`
(RAS, nibabel convention). Reading back: ``np.asanyarray(img.dataobj).transpose(2, 1, 0)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from .generator import PhantomCase


def _save(arr_zyx: np.ndarray, affine: np.ndarray, path: Path | str) -> Path:
    data = np.ascontiguousarray(arr_zyx.transpose(2, 1, 0))
    # nibabel is untyped; Any keeps mypy quiet about its methods.
    img: Any = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    # Code 1 = scanner anatomical coordinates: the affine is the acquisition geometry.
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(out))
    return out


def write_nifti(case: PhantomCase, kind: str, path: Path | str) -> Path:
    """Write ``case.images[kind]`` (float32) as NIfTI-1 (``.nii`` or ``.nii.gz``).

    Returns:
        The written path.
    """
    return _save(case.images[kind].astype(np.float32, copy=False), case.affine, path)


def write_mask_nifti(case: PhantomCase, path: Path | str) -> Path:
    """Write the uint8 label mask as NIfTI-1 (voxel value = the etiology's label value).

    Returns:
        The written path.
    """
    return _save(case.mask.astype(np.uint8, copy=False), case.affine, path)
