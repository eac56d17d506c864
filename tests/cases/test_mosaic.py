"""Siemens MOSAIC diffusion images: nibabel's real Siemens DTI headers with known pixel data."""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel
import numpy as np
import pydicom
import pytest

from cases import dicom as dicom_io
from cases.models import Series
from strokeaid_site.errors import ApplicationError
from tests.cases.upload_fixtures import uploaded, zip_bytes
from tests.factories import CaseFactory

DATA = Path(nibabel.__file__).parent / "nicom" / "tests" / "data"
SIDE, TILE, SLICES = 7, 128, 48
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _known_pixels(offset: int) -> np.ndarray:
    """Tile k holds ``offset + 10 k`` plus a column ramp 0..3 and a row ramp 0, 4, 8 (so tile
    order, column order and row order are all checked)."""
    pixels = np.zeros((SIDE * TILE, SIDE * TILE), dtype=np.uint16)
    ramp_cols = (np.arange(TILE) // 32).astype(np.uint16)
    ramp_rows = (np.arange(TILE) // 64 * 4).astype(np.uint16)
    tile = ramp_rows[:, None] + ramp_cols[None, :]
    for k in range(SLICES):
        r, c = divmod(k, SIDE)
        pixels[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] = offset + 10 * k + tile
    return pixels


def _mosaic(name: str, offset: int) -> tuple[bytes, pydicom.Dataset]:
    path = DATA / f"{name}.dcm.gz"
    if not path.exists():
        pytest.skip(f"nibabel does not ship {path.name} here")
    ds = pydicom.dcmread(io.BytesIO(gzip.decompress(path.read_bytes())))
    ds.PixelData = _known_pixels(offset).tobytes()
    ds.BitsStored, ds.HighBit = 16, 15
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue(), ds


def _nibabel_affine_ras(ds: pydicom.Dataset) -> np.ndarray:
    """nibabel's affine (voxel row, column, slice -> LPS) as ours (column, row, slice -> RAS)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers

        affine = np.asarray(dicomwrappers.wrapper_from_data(ds).affine)
    swap = np.eye(4)[[1, 0, 2, 3]]
    return np.asarray(LPS_TO_RAS @ affine @ swap)


def test_mosaic_is_unpacked_into_a_volume_with_nibabels_geometry() -> None:
    data, ds = _mosaic("siemens_dwi_1000", offset=100)
    slices = dicom_io.dicom_read(data, name="dwi.dcm")
    assert isinstance(slices, list) and len(slices) == SLICES
    (volume,) = dicom_io.dicom_volumes_build(slices, secret="s")
    assert volume.array.shape == (SLICES, TILE, TILE)
    assert volume.kind == "DWI"
    # Slice k is tile k; inside a tile, columns and rows are kept.
    expected = np.stack(
        [
            _known_pixels(100)[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]
            for r, c in (divmod(k, SIDE) for k in range(SLICES))
        ]
    )
    assert np.array_equal(volume.array, expected)
    np.testing.assert_allclose(volume.affine, _nibabel_affine_ras(ds), atol=1e-4)
    assert volume.spacing == pytest.approx((3.0, 1.796875, 1.796875))
    assert volume.header["DiffusionBValue"] == pytest.approx(1000.0)


def test_mosaic_without_csa_header_is_refused_clearly() -> None:
    _data, ds = _mosaic("siemens_dwi_1000", offset=100)
    for tag in [elem.tag for elem in ds if elem.tag.group == 0x0029]:
        del ds[tag]
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    with pytest.raises(ApplicationError) as info:
        dicom_io.dicom_read(out.getvalue(), name="broken.dcm")
    assert "mosaic" in info.value.message.lower()
    assert info.value.extra["file"] == "broken.dcm"


@pytest.mark.django_db
def test_b0_and_b1000_mosaics_upload_as_dwi_and_b0(api_client_for: Callable, neurologist: Any):
    case = CaseFactory(created_by=neurologist)
    b1000, _ = _mosaic("siemens_dwi_1000", offset=1000)
    b0, _ = _mosaic("siemens_dwi_0", offset=3000)
    client = api_client_for(neurologist)
    response = client.post(
        f"/api/cases/{case.pk}/uploads/",
        {"files": [uploaded("dti.zip", zip_bytes({"IM1.dcm": b0, "IM2.dcm": b1000}))]},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    series = {s["kind"]: s for s in response.json()["series"]}
    assert set(series) == {"DWI", "OTHER"}
    assert series["DWI"]["shape"] == [SLICES, TILE, TILE]
    stored = Series.objects.select_related("volume").get(pk=series["DWI"]["id"])
    raw = client.get(f"/api/series/{stored.pk}/volume.raw")
    assert raw.status_code == 200
    voxels = np.frombuffer(
        b"".join(raw.streaming_content) if raw.streaming else raw.content,
        dtype=raw.get("X-Dtype", "<i2"),
    )
    voxels = voxels.reshape(SLICES, TILE, TILE)
    # b=1000 is the DWI (tile k = slice k holds 1000 + 10 k), b=0 the other volume.
    assert [int(voxels[k, 0, 0]) for k in (0, 1, 47)] == [1000, 1010, 1470]
