"""NIfTI reading: ``.nii`` / ``.nii.gz`` bytes to a volume with its geometry, and nothing else.

NIfTI headers carry free text (``descrip``, ``aux_file``, ``intent_name``, ``db_name``) that
converters fill with patient names, dates and scanner ids; none of it is read into the
result: only the voxels, the affine (nibabel's best of sform/qform: voxel (x, y, z) -> RAS mm,
the platform's convention) and the zooms are kept. The array is transposed to (z, y, x)
without resampling or reorientation, so the stored voxels are exactly the file's voxels.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib

import nibabel as nib
import numpy as np
from django.utils.translation import gettext as _

from cases.dicom import BuiltVolume
from cases.dicom.deid import uid_remap
from strokeaid_site.errors import ApplicationError

_GZIP_MAGIC = b"\x1f\x8b"


def is_nifti_name(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".nii") or lower.endswith(".nii.gz")


def _gunzip(data: bytes, *, name: str, max_bytes: int, max_ratio: float) -> bytes:
    """Decompresses with a cap on the output, counted while inflating (gzip bombs)."""
    limit = min(max_bytes, int(max(len(data), 1) * max_ratio))
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            while True:
                chunk = fh.read(1024 * 1024)
                if not chunk:
                    break
                out.write(chunk)
                if out.tell() > limit:
                    raise ApplicationError(
                        _("The compressed file expands beyond the allowed size."),
                        {"file": name, "limit_bytes": limit},
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise ApplicationError(_("The gzip data is damaged or truncated."), {"file": name}) from exc
    return out.getvalue()


def nifti_read(
    data: bytes,
    *,
    name: str,
    kind: str,
    secret: str | bytes,
    max_bytes: int,
    max_ratio: float,
) -> BuiltVolume:
    """One NIfTI file to a volume of ``kind``.

    A 4-D image is accepted only with a single volume: a multi-volume file (a DWI with its b0,
    an fMRI run) has no single right volume to pick, so it is refused with a clear message.
    The series UID is derived from the file's content (HMAC), so re-uploading the same file to
    a case is recognised as a duplicate.
    """
    if not data:
        raise ApplicationError(_("The file is empty."), {"file": name})
    raw = data
    if data[:2] == _GZIP_MAGIC:
        raw = _gunzip(data, name=name, max_bytes=max_bytes, max_ratio=max_ratio)
    elif name.lower().endswith(".gz"):
        raise ApplicationError(_("The file is named .gz but is not gzip data."), {"file": name})
    try:
        # sizeof_hdr is 348 for NIfTI-1 and 540 for NIfTI-2, in either byte order.
        if 540 in (int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big")):
            image: nib.Nifti1Image | nib.Nifti2Image = nib.Nifti2Image.from_bytes(raw)
        else:
            image = nib.Nifti1Image.from_bytes(raw)
        shape = image.shape
        affine = np.asarray(image.affine, dtype=np.float64)
        zooms = [float(z) for z in image.header.get_zooms()[:3]]
        if len(shape) == 4 and shape[3] == 1:
            array = np.asanyarray(image.dataobj)[..., 0]
        elif len(shape) == 3:
            array = np.asanyarray(image.dataobj)
        else:
            raise ApplicationError(
                _(
                    "The NIfTI image must be 3-D (or 4-D with a single volume); "
                    "this one has shape %(shape)s."
                )
                % {"shape": "x".join(str(n) for n in shape)},
                {"file": name, "shape": [int(n) for n in shape]},
            )
    except ApplicationError:
        raise
    except Exception as exc:  # nibabel raises many types for damaged headers/data
        raise ApplicationError(
            _("Not a readable NIfTI-1/NIfTI-2 file (damaged or truncated)."),
            {"file": name, "detail": str(exc)[:200]},
        ) from exc
    if array.dtype.kind not in "iuf" or array.dtype.itemsize > 8:
        raise ApplicationError(
            _("Unsupported NIfTI data type %(dtype)s.") % {"dtype": str(array.dtype)},
            {"file": name},
        )
    if array.dtype == np.float64 or (array.dtype.kind in "iu" and array.dtype.itemsize > 4):
        array = array.astype(np.float32)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise ApplicationError(_("The NIfTI affine is missing or degenerate."), {"file": name})
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise ApplicationError(_("The NIfTI voxel sizes are not positive."), {"file": name})
    # (x, y, z) -> (z, y, x): a view transpose, then one contiguous copy.
    volume = np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0))
    digest = hashlib.sha256(data).hexdigest()
    series_uid = uid_remap(f"nifti:{digest}", secret=secret)
    header = {
        "source": "nifti",
        "format": "NIfTI-2" if isinstance(image, nib.Nifti2Image) else "NIfTI-1",
        "datatype": str(image.header.get_data_dtype()),
        "qform_code": int(image.header["qform_code"]),
        "sform_code": int(image.header["sform_code"]),
        "xyzt_units": [str(u) for u in image.header.get_xyzt_units()],
        "stored_dtype": str(volume.dtype),
    }
    return BuiltVolume(
        array=volume,
        spacing=(zooms[2], zooms[1], zooms[0]),
        affine=affine,
        kind=kind,
        series_uid=series_uid,
        study_uid="",
        description="",
        study_description="",
        header=header,
        quarantine_reason="",
        files=[name],
        source="nifti",
    )
