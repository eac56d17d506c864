"""Fixtures of the annotation tests: masks as raw bytes and NIfTI, built on the phantom case."""

from __future__ import annotations

import gzip
import io
from typing import Any

import nibabel as nib
import numpy as np
import pytest


def nifti_bytes(array_zyx: np.ndarray, affine: Any, *, compress: bool = True) -> bytes:
    """A label volume (z, y, x) as NIfTI on the series' grid, the way outside clients send it."""
    axes = (2, 1, 0, *range(3, array_zyx.ndim))  # a 4-D "mask" keeps its extra axis last
    image = nib.Nifti1Image(np.ascontiguousarray(array_zyx.transpose(axes)), np.asarray(affine))
    raw = image.to_bytes()
    return gzip.compress(raw) if compress else raw


def nifti_array(body: bytes) -> np.ndarray:
    """Reads a NIfTI answer back to (z, y, x)."""
    image = nib.Nifti1Image.from_bytes(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
    return np.asarray(image.dataobj).transpose(2, 1, 0)


@pytest.fixture
def dwi(phantom_series: dict[str, Any]) -> Any:
    return phantom_series["DWI"]


@pytest.fixture
def lesion_mask(dwi: Any) -> np.ndarray:
    """A small two-label mask on the DWI grid."""
    mask = np.zeros(tuple(dwi.shape), dtype=np.uint8)
    mask[3, 10:20, 10:20] = 2  # 100 voxels cardioembolic
    mask[4, 30:35, 30:36] = 1  # 30 voxels atherothrombotic
    return mask


@pytest.fixture
def npy_io() -> Any:
    return io.BytesIO
