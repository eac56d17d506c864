"""Binary forms of label volumes: the editor's raw uint8 body and NIfTI-1 (``.nii[.gz]``).

Raw form (``/api/series/{id}/mask.raw``): ``z*y*x`` bytes, one uint8 label value per voxel,
C order (x fastest, then y, then z) on the series' grid, optionally gzip-compressed.
"""

from __future__ import annotations

import gzip
import io
import zlib

import nibabel as nib
import numpy as np
from django.utils.translation import gettext as _

from cases.models import Series
from strokeaid_site.errors import ApplicationError, TooLargeError

_GZIP_MAGIC = b"\x1f\x8b"
#: Room for a NIfTI header with extensions in front of the voxels.
_NIFTI_HEADER_ROOM = 1024 * 1024
#: The widest voxel type a label volume may reasonably come in (float64 / int64).
_NIFTI_MAX_VOXEL_BYTES = 8


def nifti_max_bytes(series: Series) -> int:
    """The largest (uncompressed) NIfTI label volume that fits ``series``' grid."""
    voxels = int(np.prod([int(n) for n in series.shape]))
    return _NIFTI_HEADER_ROOM + voxels * _NIFTI_MAX_VOXEL_BYTES


def _gunzip_bounded(body: bytes, limit: int) -> bytes:
    """gzip-decompresses at most ``limit`` bytes; more is a 413, not an exhausted server."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApplicationError(_("The body is not valid gzip."), {"error": str(exc)}) from exc
    if len(data) > limit:
        raise TooLargeError(
            _("The decompressed mask is larger than any label volume of this series."),
            {"limit": limit},
        )
    return data


def mask_decode_raw(*, series: Series, body: bytes, gzipped: bool = False) -> np.ndarray:
    """Turns the editor's binary body into a (z, y, x) uint8 array without copying.

    Format: ``z*y*x`` bytes, one uint8 label value per voxel, C order (x fastest), optionally
    gzip-compressed (``Content-Encoding: gzip``). Decompression stops one byte past the
    expected size, so a gzip bomb cannot exhaust memory.
    """
    shape = tuple(int(n) for n in series.shape)
    expected = int(np.prod(shape))
    if gzipped or body[:2] == _GZIP_MAGIC:
        try:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(body, expected + 1)
        except zlib.error as exc:
            raise ApplicationError(
                _("The mask body is not valid gzip."), {"error": str(exc)}
            ) from exc
    if len(body) != expected:
        raise ApplicationError(
            _("The mask does not have the shape of the series."),
            {"expected_bytes": expected, "received_bytes": len(body), "shape": list(shape)},
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def mask_decode_nifti(*, series: Series, body: bytes) -> np.ndarray:
    """Reads a NIfTI label volume (``.nii`` or ``.nii.gz`` bytes) into (z, y, x) order.

    NIfTI stores voxels as (x, y, z) with an affine from voxel (i=x, j=y, k=z) to RAS mm, the
    same convention as ``Series.affine``. A mask whose axes point elsewhere than the series'
    ones is refused: silently accepting it would flip lesions between hemispheres.
    """
    if body[:2] == _GZIP_MAGIC:
        body = _gunzip_bounded(body, nifti_max_bytes(series))
    try:
        image = nib.Nifti1Image.from_bytes(body)
    except Exception as exc:  # nibabel raises many types for malformed files
        raise ApplicationError(
            _("The body is not a NIfTI-1 label volume."), {"error": str(exc)[:200]}
        ) from exc
    if len(image.shape) != 3:
        raise ApplicationError(
            _("A mask must be a 3-D volume."), {"shape": [int(n) for n in image.shape]}
        )
    series_affine = np.asarray(series.affine, dtype=float)
    series_axes = nib.aff2axcodes(series_affine)
    received_axes = nib.aff2axcodes(image.affine)
    if received_axes != series_axes:
        # The same grid saved in another voxel order (a tool that reorients to RAS, e.g.
        # nibabel's as_closest_canonical or fslreorient2std) is put back into the series'
        # order; anything else would flip lesions between hemispheres and is refused.
        image = _reoriented_onto(image, series_affine, series_axes, received_axes)
    expected_xyz = tuple(int(n) for n in reversed(series.shape))
    if tuple(int(n) for n in image.shape) != expected_xyz:
        raise ApplicationError(
            _("The mask does not have the shape of the series."),
            {"expected": list(expected_xyz), "received": [int(n) for n in image.shape]},
        )
    try:
        data = np.asanyarray(image.dataobj)
    except (OSError, ValueError, EOFError) as exc:  # header fine, voxel data truncated
        raise ApplicationError(
            _("The NIfTI file's voxel data is incomplete or unreadable."),
            {"error": str(exc)[:200]},
        ) from exc
    return np.ascontiguousarray(data.transpose(2, 1, 0))


def _reoriented_onto(
    image: nib.Nifti1Image,
    series_affine: np.ndarray,
    series_axes: tuple[str, ...],
    received_axes: tuple[str, ...],
) -> nib.Nifti1Image:
    transform = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(received_axes), nib.orientations.axcodes2ornt(series_axes)
    )
    reoriented: nib.Nifti1Image = image.as_reoriented(transform)
    spacing = np.linalg.norm(series_affine[:3, :3], axis=0)
    same_grid = np.allclose(
        reoriented.affine[:3, :3], series_affine[:3, :3], atol=1e-3 * float(spacing.max())
    ) and np.allclose(
        reoriented.affine[:3, 3], series_affine[:3, 3], atol=0.1 * float(spacing.min())
    )
    if not same_grid:
        raise ApplicationError(
            _("The mask's orientation differs from the series' orientation."),
            {"expected": list(series_axes), "received": list(received_axes)},
        )
    return reoriented


def mask_to_nifti_bytes(*, series: Series, array: np.ndarray) -> bytes:
    """A label volume as ``.nii.gz`` bytes on the series' grid (x, y, z order + its affine)."""
    image = nib.Nifti1Image(
        np.ascontiguousarray(array.transpose(2, 1, 0)),
        np.asarray(series.affine, dtype=float),
    )
    image.header.set_data_dtype(np.uint8)
    image.header.set_xyzt_units("mm")
    image.set_sform(np.asarray(series.affine, dtype=float), code=1)
    image.set_qform(np.asarray(series.affine, dtype=float), code=1)
    buf = io.BytesIO()
    raw = image.to_bytes()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as gz:
        gz.write(raw)
    return buf.getvalue()
