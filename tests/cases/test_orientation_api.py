"""Real-world orientation over REST: NIfTI in LAS, RAS, LPS, transposed and oblique voxel
orders. Stored voxels and masks stay on the file's grid with its affine; pictures come out
radiological (anterior up, patient right on the image's left)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from cases.models import Series
from tests.cases.upload_fixtures import uploaded
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db

SHAPE_RAS = (40, 48, 6)  # x (R), y (A), z (S) of the canonical volume
MARKER = (slice(30, 36), slice(36, 44), 3)  # right (high x), anterior (high y), slice 3


def _canonical() -> nib.Nifti1Image:
    """A head-like volume, RAS-ordered, with a bright marker front-right on slice 3."""
    x, y = np.mgrid[0 : SHAPE_RAS[0], 0 : SHAPE_RAS[1]]
    head = ((x - 19.5) / 17) ** 2 + ((y - 23.5) / 21) ** 2 <= 1
    data = np.zeros(SHAPE_RAS, np.int16)
    data[head] = 100
    data[MARKER] = 1000
    affine = np.diag([1.2, 1.0, 4.0, 1.0])
    affine[:3, 3] = (-24.0, -30.0, -10.0)
    return nib.Nifti1Image(data, affine)


def _rot_z(degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    return m


def _as(codes: str, oblique: float = 0.0) -> nib.Nifti1Image:
    image = _canonical()
    transform = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(image.affine), nib.orientations.axcodes2ornt(codes)
    )
    image = image.as_reoriented(transform)
    if oblique:
        image = nib.Nifti1Image(np.asanyarray(image.dataobj), _rot_z(oblique) @ image.affine)
    return image


ORIENTATIONS = {
    "RAS": _as("RAS"),
    "LAS": _as("LAS"),  # nibabel's anatomical.nii stores its voxels so
    "LPS": _as("LPS"),  # DICOM's order
    "PRS": _as("PRS"),  # rows along left-right: the picture is turned
    "LAS oblique": _as("LAS", oblique=12.0),
}


def _nifti_bytes(image: nib.Nifti1Image) -> bytes:
    image = nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine)
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    return gzip.compress(image.to_bytes())


def _marker_zyx(image: nib.Nifti1Image) -> np.ndarray:
    """The marker's voxels in stored (z, y, x) order."""
    return np.asanyarray(image.dataobj).transpose(2, 1, 0) == 1000


@pytest.fixture
def upload(api_client_for: Callable, neurologist: Any) -> Callable:
    client = api_client_for(neurologist)

    def _upload(image: nib.Nifti1Image) -> tuple[Any, Series]:
        case = CaseFactory(created_by=neurologist)
        response = client.post(
            f"/api/cases/{case.pk}/uploads/",
            {"files": [uploaded("flair.nii.gz", _nifti_bytes(image))], "kind": "FLAIR"},
            format="multipart",
        )
        assert response.status_code == 201, response.json()
        (body,) = response.json()["series"]
        return client, Series.objects.select_related("volume").get(pk=body["id"])

    return _upload


@pytest.mark.parametrize("name", list(ORIENTATIONS))
def test_picture_is_radiological_and_voxels_stay_on_the_files_grid(upload, name):
    image = ORIENTATIONS[name]
    client, series = upload(image)
    # Stored exactly as the file: same voxels, same affine.
    np.testing.assert_allclose(np.asarray(series.affine), image.affine, atol=1e-5)
    raw = client.get(f"/api/series/{series.pk}/volume.raw")
    content = b"".join(raw.streaming_content) if raw.streaming else raw.content
    stored = np.frombuffer(content, dtype=raw["X-Dtype"]).reshape(series.shape)
    np.testing.assert_array_equal(stored, np.asanyarray(image.dataobj).transpose(2, 1, 0))

    detail = client.get(f"/api/series/{series.pk}/").json()
    labels = detail["display"]["labels"]
    assert (labels["top"][0], labels["bottom"][0], labels["left"][0], labels["right"][0]) == (
        "A",
        "P",
        "R",
        "L",
    )

    # The marker (front right) is in the picture's top-left quadrant, whatever the order.
    z = int(np.argwhere(_marker_zyx(image))[0][0])
    png = client.get(f"/api/series/{series.pk}/slices/{z}.png?wc=600&ww=100")
    assert png.status_code == 200
    picture = np.asarray(Image.open(io.BytesIO(png.content)))
    rows, cols = np.nonzero(picture > 128)
    assert rows.size > 0
    assert rows.mean() < picture.shape[0] / 2, (name, rows.mean(), picture.shape)
    assert cols.mean() < picture.shape[1] / 2, (name, cols.mean(), picture.shape)


@pytest.mark.parametrize("name", ["LAS", "PRS", "LAS oblique"])
def test_mask_round_trip_keeps_the_series_grid(upload, name):
    image = ORIENTATIONS[name]
    client, series = upload(image)
    marker = _marker_zyx(image)
    mask = marker.astype(np.uint8) * 2
    put = client.put(
        f"/api/series/{series.pk}/mask.raw",
        mask.tobytes(),
        content_type="application/octet-stream",
    )
    assert put.status_code == 200, put.content
    got = client.get(f"/api/series/{series.pk}/mask.nii.gz")
    nifti = nib.Nifti1Image.from_bytes(gzip.decompress(got.content))
    np.testing.assert_allclose(nifti.affine, image.affine, atol=1e-5)
    # In world coordinates the mask sits on the marker of the file the user uploaded.
    np.testing.assert_array_equal(np.asanyarray(nifti.dataobj) == 2, marker.transpose(2, 1, 0))


def test_a_mask_saved_reoriented_to_ras_is_put_back_on_the_series_grid(upload):
    image = ORIENTATIONS["LAS"]
    client, series = upload(image)
    marker = _marker_zyx(image)
    mask_image = nib.Nifti1Image(marker.transpose(2, 1, 0).astype(np.uint8), image.affine)
    canonical = nib.as_closest_canonical(mask_image)  # what many tools write
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    put = client.put(
        f"/api/series/{series.pk}/mask.nii.gz",
        gzip.compress(canonical.to_bytes()),
        content_type="application/gzip",
    )
    assert put.status_code == 200, put.content
    got = client.get(f"/api/series/{series.pk}/mask.raw")
    stored = np.frombuffer(got.content, np.uint8).reshape(series.shape)
    np.testing.assert_array_equal(stored == 1, marker)
