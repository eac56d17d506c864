"""Files to slices: one DICOM file (single-frame, enhanced multi-frame or Siemens mosaic) to
its 2-D slices, or the reason it is skipped."""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
import pydicom
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from .header import bad_file, float_or, group_value, header_floats, header_uids
from .mosaic import is_mosaic, mosaic_slices
from .slices import DicomSlice, Skipped, single_slice

# Storage SOP classes that never hold an image volume: structured reports, presentation
# states, key object selections, RT structures/plans, encapsulated documents, waveforms...
# (PS3.4 B.5). They are skipped with a note instead of failing the upload: PACS exports mix
# them freely with the images.
_NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports, key object selection
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated PDF/CDA/STL
    "1.2.840.10008.5.1.4.1.1.481.",  # RT (dose is an image but not one we use)
    "1.2.840.10008.5.1.4.1.1.9.",  # waveforms
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, fiducials, segmentation
    "1.2.840.10008.5.1.4.1.1.67",  # real world value mapping
)


def has_dicom_preamble(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def dicom_read(data: bytes, *, name: str) -> list[DicomSlice] | Skipped:
    """Parses one DICOM file (bytes) into its slices, or says why it is skipped.

    Raises ``ApplicationError`` (naming ``name``) for empty, non-DICOM, truncated or
    undecodable files. Files without the 128-byte preamble and ``DICM`` prefix (PS3.10) are
    refused: we never parse untrusted bytes with ``force=True``.
    """
    if not data:
        raise bad_file(_("The file is empty."), name)
    if not has_dicom_preamble(data):
        raise bad_file(
            _(
                "Not a DICOM file: the 128-byte preamble and 'DICM' prefix are missing "
                "(export the images as DICOM Part 10 files)."
            ),
            name,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise bad_file(_("The DICOM file could not be read (truncated or damaged)."), name) from exc
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class.startswith(_NON_IMAGE_SOP_PREFIXES) or "PixelData" not in ds:
        return Skipped(name, _("Not an image (report, presentation state or other object)."))
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return Skipped(name, _("Colour image (a screen capture or photo), not an MR/CT slice."))
    try:
        pixels = _native_pixels(ds)
        if pixels is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pixels = ds.pixel_array
    except Exception as exc:  # any decoder failure is the same user error
        raise bad_file(
            _("The image data could not be decoded (truncated file or unsupported compression)."),
            name,
            detail=str(exc)[:200],
        ) from exc
    # The decoded array is all we need from the pixel data; free the encoded copy now.
    del ds.PixelData
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced_slices(ds, pixels, name)
    if frames > 1:
        raise bad_file(
            _(
                "Multi-frame DICOM without per-frame geometry is not supported; "
                "export the series as one file per slice."
            ),
            name,
        )
    if is_mosaic(ds):
        return mosaic_slices(ds, pixels, name)
    return [single_slice(ds, pixels, name)]


_NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"})


def _native_pixels(ds: Dataset) -> np.ndarray | None:
    """Uncompressed little-endian single-frame pixels as a zero-copy view, or None.

    The common case (scanner exports) skips pydicom's generic decoder pipeline. Only taken
    when it gives exactly what ``pixel_array`` gives: one frame, one sample, BitsStored equal
    to BitsAllocated (no high bits to mask or sign-extend) and enough bytes; anything else
    goes through pydicom.
    """
    meta = getattr(ds, "file_meta", None)
    if meta is None or str(meta.get("TransferSyntaxUID", "")) not in _NATIVE_SYNTAXES:
        return None
    try:
        bits = int(ds.BitsAllocated)
        if (
            bits not in (8, 16, 32)
            or int(ds.BitsStored) != bits
            or int(ds.get("SamplesPerPixel", 1) or 1) != 1
            or int(ds.get("NumberOfFrames", 1) or 1) != 1
            or "PerFrameFunctionalGroupsSequence" in ds
        ):
            return None
        rows, cols = int(ds.Rows), int(ds.Columns)
        signed = int(ds.PixelRepresentation) == 1
        data = ds.PixelData
    except (AttributeError, TypeError, ValueError, KeyError):
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")
    count = rows * cols
    if not isinstance(data, bytes) or len(data) < count * dtype.itemsize or count == 0:
        return None
    return np.frombuffer(data, dtype=dtype, count=count).reshape(rows, cols)


def _enhanced_slices(ds: Dataset, pixels: np.ndarray, name: str) -> list[DicomSlice]:
    """Frames of an enhanced (multi-frame) image, geometry from the functional groups."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    if len(per_frame) != frames:
        raise bad_file(
            _("The per-frame functional groups do not match the number of frames."), name
        )
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    shared = (
        ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else None
    )
    series_uid, study_uid, sop_uid, for_uid = header_uids(ds)
    if not series_uid:
        raise bad_file(_("The DICOM file has no SeriesInstanceUID."), name)
    out: list[DicomSlice] = []
    for index, group in enumerate(per_frame):
        groups = (group, shared)
        ipp = header_floats(group_value(groups, "PlanePositionSequence", "ImagePositionPatient"), 3)
        iop = header_floats(
            group_value(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
        )
        spacing = header_floats(group_value(groups, "PixelMeasuresSequence", "PixelSpacing"), 2)
        if ipp is None or iop is None or spacing is None:
            raise bad_file(
                _("A frame of the multi-frame image has no position or orientation."), name
            )
        slope = group_value(groups, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = group_value(groups, "PixelValueTransformationSequence", "RescaleIntercept")
        b_value = group_value(groups, "MRDiffusionSequence", "DiffusionBValue")
        out.append(
            DicomSlice(
                file=name,
                frame=index,
                series_uid=series_uid,
                study_uid=study_uid,
                sop_uid=sop_uid,
                for_uid=for_uid,
                ipp=ipp,
                iop=iop,
                pixel_spacing=(float(spacing[0]), float(spacing[1])),
                rows=int(ds.Rows),
                cols=int(ds.Columns),
                slope=float_or(slope if slope is not None else 1, 1.0) or 1.0,
                intercept=float_or(intercept if intercept is not None else 0, 0.0),
                b_value=float_or(b_value, 0.0) if b_value is not None else None,
                pixels=pixels[index],
                dataset=ds,
            )
        )
    return out
