"""Siemens mosaics: one file whose pixel data tiles all the slices of a volume."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .header import bad_file
from .slices import DicomSlice, single_slice


def is_mosaic(ds: Dataset) -> bool:
    """A Siemens MOSAIC image: one 2-D frame holding every slice of a volume as tiles."""
    image_type = [str(v).upper() for v in _as_list(ds.get("ImageType"))]
    return "MOSAIC" in image_type and "SIEMENS" in str(ds.get("Manufacturer", "") or "").upper()


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return list(value)
    return [value]


def mosaic_slices(ds: Dataset, pixels: np.ndarray, name: str) -> list[DicomSlice]:
    """The tiles of a mosaic as slices, each with its own position.

    The slice count and the slice normal live in Siemens' private CSA image header
    (``NumberOfImagesInMosaic``, ``SliceNormalVector``); nibabel's ``nicom`` wrapper reads it
    and corrects ImagePositionPatient, which Siemens writes for the top-left corner of the
    whole mosaic, to the first tile's first voxel (as dcm2niix does). Tiles fill a square grid
    of ``ceil(sqrt(n))`` tiles a side, row by row, in slice order along the normal.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental
            from nibabel.nicom import dicomwrappers

            wrapper = dicomwrappers.wrapper_from_data(ds)
            count = int(wrapper.n_mosaic)
            position = np.asarray(wrapper.image_position, dtype=np.float64)
            normal = np.asarray(wrapper.slice_normal, dtype=np.float64)
            step = float(wrapper.voxel_sizes[2])
    except Exception as exc:  # nibabel raises its own types for broken CSA headers
        raise bad_file(
            _(
                "A Siemens mosaic image whose slice count or geometry cannot be read from "
                "its CSA header; export the series unmosaiced (one image per slice)."
            ),
            name,
            detail=str(exc)[:200],
        ) from exc
    rows, cols = int(ds.Rows), int(ds.Columns)
    side = int(np.ceil(np.sqrt(count))) if count > 0 else 0
    if (
        count < 1
        or side * side < count
        or rows % side
        or cols % side
        or not np.isfinite(position).all()
        or not np.isfinite(normal).all()
        or not np.linalg.norm(normal) > 0
        or not step > 0
    ):
        raise bad_file(
            _(
                "A Siemens mosaic image whose slice count or geometry cannot be read from "
                "its CSA header; export the series unmosaiced (one image per slice)."
            ),
            name,
        )
    tile_rows, tile_cols = rows // side, cols // side
    template = single_slice(ds, pixels, name)
    normal = normal / np.linalg.norm(normal)
    out: list[DicomSlice] = []
    for index in range(count):
        r, c = divmod(index, side)
        tile = pixels[r * tile_rows : (r + 1) * tile_rows, c * tile_cols : (c + 1) * tile_cols]
        out.append(
            replace(
                template,
                frame=index,
                ipp=position + index * step * normal,
                rows=tile_rows,
                cols=tile_cols,
                pixels=tile,
            )
        )
    return out
