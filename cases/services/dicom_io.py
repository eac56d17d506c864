"""DICOM reading: files to slices, slices to de-identified volumes (pure pydicom/numpy, no DB).

Geometry follows nibabel/dcm2niix: the array is stored (z, y, x) = (slice, row, column); the
affine maps voxel (i=x=column, j=y=row, k=z=slice) to patient RAS millimetres. DICOM patient
coordinates are LPS, hence the final ``diag(-1, -1, 1)``. Slices are ordered by their
ImagePositionPatient projected on the slice normal (the cross product of the two
ImageOrientationPatient direction cosines) - never by InstanceNumber or file name, which
scanners and PACS exports do not keep consistent.

Every file is read once (``dcmread`` of the bytes, pixels decoded by pydicom's plugins:
JPEG 2000, JPEG-LS, RLE, deflate and big-endian give the same voxels as uncompressed data),
the identifying parts of the header are never copied anywhere, and only the de-identified
summary made by ``header_summary`` leaves this module with the voxels.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np
import pydicom
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue

from strokeaid_site.errors import ApplicationError

from .deid import (
    dataset_deidentify,
    deidentification_summary,
    descriptor_clean,
    phi_values,
    uid_remap,
)

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
#: Secondary capture image storage SOP classes: screenshots, usually with burned-in text.
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
#: ImageType values of quantitative maps: derived, but computed, not captured from a screen.
_MAP_IMAGE_TYPES = frozenset(
    {"ADC", "DIFFUSION", "TRACEW", "TRACE", "FA", "MPR", "REFORMATTED", "PROJECTION IMAGE"}
)
#: Relative tolerance for "evenly spaced slices" (a missing slice would distort geometry).
_SPACING_TOLERANCE = 0.1


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


def _bad(message: str, name: str, **extra: Any) -> ApplicationError:
    return ApplicationError(message, {"file": name, **extra})


# --- reading ------------------------------------------------------------------------------
def has_dicom_preamble(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def dicom_read(data: bytes, *, name: str) -> list[DicomSlice] | Skipped:
    """Parses one DICOM file (bytes) into its slices, or says why it is skipped.

    Raises ``ApplicationError`` (naming ``name``) for empty, non-DICOM, truncated or
    undecodable files. Files without the 128-byte preamble and ``DICM`` prefix (PS3.10) are
    refused: we never parse untrusted bytes with ``force=True``.
    """
    if not data:
        raise _bad(_("The file is empty."), name)
    if not has_dicom_preamble(data):
        raise _bad(
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
        raise _bad(_("The DICOM file could not be read (truncated or damaged)."), name) from exc
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
        raise _bad(
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
        raise _bad(
            _(
                "Multi-frame DICOM without per-frame geometry is not supported; "
                "export the series as one file per slice."
            ),
            name,
        )
    if is_mosaic(ds):
        return _mosaic_slices(ds, pixels, name)
    return [_single_slice(ds, pixels, name)]


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


def _floats(value: Any, count: int) -> np.ndarray | None:
    try:
        arr = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.shape != (count,) or not np.isfinite(arr).all():
        return None
    return arr


def _float_or(value: Any, default: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return default
    return out if np.isfinite(out) else default


def _uids(ds: Dataset) -> tuple[str, str, str, str]:
    return (
        str(ds.get("SeriesInstanceUID", "") or ""),
        str(ds.get("StudyInstanceUID", "") or ""),
        str(ds.get("SOPInstanceUID", "") or ""),
        str(ds.get("FrameOfReferenceUID", "") or ""),
    )


def _single_slice(ds: Dataset, pixels: np.ndarray, name: str) -> DicomSlice:
    series_uid, study_uid, sop_uid, for_uid = _uids(ds)
    if not series_uid:
        raise _bad(_("The DICOM file has no SeriesInstanceUID."), name)
    ipp = _floats(ds.get("ImagePositionPatient"), 3)
    iop = _floats(ds.get("ImageOrientationPatient"), 6)
    spacing = _floats(ds.get("PixelSpacing"), 2)
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
        slope=_float_or(ds.get("RescaleSlope", 1), 1.0) or 1.0,
        intercept=_float_or(ds.get("RescaleIntercept", 0), 0.0),
        b_value=b_value_of(ds),
        pixels=pixels,
        dataset=ds,
        has_geometry=has_geometry,
    )


def _group_value(groups: Iterable[Dataset | None], seq: str, attr: str) -> Any:
    """``attr`` of the first item of ``seq`` in the first functional group holding it."""
    for group in groups:
        if group is None or seq not in group or not group[seq].value:
            continue
        item = group[seq].value[0]
        if attr in item:
            return item[attr].value
    return None


def _enhanced_slices(ds: Dataset, pixels: np.ndarray, name: str) -> list[DicomSlice]:
    """Frames of an enhanced (multi-frame) image, geometry from the functional groups."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.PerFrameFunctionalGroupsSequence
    if len(per_frame) != frames:
        raise _bad(_("The per-frame functional groups do not match the number of frames."), name)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    shared = (
        ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else None
    )
    series_uid, study_uid, sop_uid, for_uid = _uids(ds)
    if not series_uid:
        raise _bad(_("The DICOM file has no SeriesInstanceUID."), name)
    out: list[DicomSlice] = []
    for index, group in enumerate(per_frame):
        groups = (group, shared)
        ipp = _floats(_group_value(groups, "PlanePositionSequence", "ImagePositionPatient"), 3)
        iop = _floats(
            _group_value(groups, "PlaneOrientationSequence", "ImageOrientationPatient"), 6
        )
        spacing = _floats(_group_value(groups, "PixelMeasuresSequence", "PixelSpacing"), 2)
        if ipp is None or iop is None or spacing is None:
            raise _bad(_("A frame of the multi-frame image has no position or orientation."), name)
        slope = _group_value(groups, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _group_value(groups, "PixelValueTransformationSequence", "RescaleIntercept")
        b_value = _group_value(groups, "MRDiffusionSequence", "DiffusionBValue")
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
                slope=_float_or(slope if slope is not None else 1, 1.0) or 1.0,
                intercept=_float_or(intercept if intercept is not None else 0, 0.0),
                b_value=_float_or(b_value, 0.0) if b_value is not None else None,
                pixels=pixels[index],
                dataset=ds,
            )
        )
    return out


# --- Siemens mosaic ---------------------------------------------------------------------------
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


def _mosaic_slices(ds: Dataset, pixels: np.ndarray, name: str) -> list[DicomSlice]:
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
        raise _bad(
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
        raise _bad(
            _(
                "A Siemens mosaic image whose slice count or geometry cannot be read from "
                "its CSA header; export the series unmosaiced (one image per slice)."
            ),
            name,
        )
    tile_rows, tile_cols = rows // side, cols // side
    template = _single_slice(ds, pixels, name)
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


# --- diffusion b-value and series kind ------------------------------------------------------
def _private_value(ds: Dataset, group: int, creator: str, offset: int) -> Any:
    """The value of private element ``(group, xx<offset>)`` of ``creator``'s block, or None."""
    try:
        block = ds.private_block(group, creator)
        return block[offset].value
    except (KeyError, ValueError):
        return None


def _first_number(value: Any, *, binary_float: bool = False) -> float | None:
    """First number in a private value (decoded, a string, a list, or raw bytes of UN VR)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        if binary_float and len(value) == 4:
            return float(struct.unpack("<f", value)[0])
        value = value.decode("latin-1", "ignore")
    if isinstance(value, list | tuple | MultiValue):
        value = value[0] if len(value) else None
        if value is None:
            return None
    match = re.search(r"[-+]?\d+(\.\d+)?", str(value))
    return float(match.group(0)) if match else None


def b_value_of(ds: Dataset) -> float | None:
    """Diffusion b-value (s/mm²): standard (0018,9087), else Siemens, GE or Philips private
    elements, else a Siemens sequence name like ``*ep_b1000t``. None when no b-value is found.

    Read before de-identification, which removes the private elements.
    """
    if "DiffusionBValue" in ds and ds.DiffusionBValue not in (None, ""):
        return _float_or(ds.DiffusionBValue, 0.0)
    siemens = _first_number(_private_value(ds, 0x0019, "SIEMENS MR HEADER", 0x0C))
    if siemens is not None:
        return siemens
    ge = _first_number(_private_value(ds, 0x0043, "GEMS_PARM_01", 0x39))
    if ge is not None:
        # GE adds 1e9 to the b-value on some software versions.
        return ge % 1e9 if ge >= 1e9 else ge
    philips = _first_number(
        _private_value(ds, 0x2001, "Philips Imaging DD 001", 0x03), binary_float=True
    )
    if philips is not None:
        return philips
    match = re.search(r"ep_b(\d+)", str(ds.get("SequenceName", "") or ""))
    return float(match.group(1)) if match else None


_ADC_RE = re.compile(r"(^|[^A-Z])D?ADC([^A-Z]|$)|APPARENT.?DIFF")
_EADC_RE = re.compile(r"(^|[^A-Z])(EADC|EXP(ONENTIAL)?.?ADC)([^A-Z]|$)")
_DWI_RE = re.compile(r"DWI|DIFF|TRACE|(^|[^A-Z])B.?\d{3,4}([^0-9]|$)|RESOLVE|\bDW\b")
_FLAIR_RE = re.compile(r"FLAIR|DARK.?FLUID|TIRM|DA.?FL|(^|[^A-Z])FL.?T2|T2.?FL([^A-Z]|$)")


def series_kind_detect(hints: dict[str, Any]) -> str:
    """DWI / ADC / FLAIR / CT / OTHER from header hints (read before de-identification).

    ``hints``: ``modality``, ``description`` (series description + protocol name),
    ``image_type`` (list), ``sequence_name``, ``scanning_sequence``, ``inversion_time``,
    ``echo_time``, ``b_values`` (set of floats). Order matters: an ADC map often carries
    "DIFFUSION" and "ep2d_diff" too, so ADC is decided before DWI.
    """
    modality = str(hints.get("modality") or "").upper()
    if modality == "CT":
        return "CT"
    if modality and modality != "MR":
        return "OTHER"
    text = str(hints.get("description") or "").upper()
    image_type = {str(v).upper() for v in hints.get("image_type") or []}
    if _EADC_RE.search(text) or "EADC" in image_type or "FA" in image_type:
        return "OTHER"
    if "ADC" in image_type or _ADC_RE.search(text):
        return "ADC"
    b_values = {b for b in hints.get("b_values") or set() if b is not None}
    if (
        (b_values and max(b_values) >= 300)
        or image_type & {"TRACEW", "DIFFUSION"}
        or _DWI_RE.search(text)
    ):
        return "DWI"
    sequence = str(hints.get("sequence_name") or "").lower()
    scanning = str(hints.get("scanning_sequence") or "").upper()
    ti = _float_or(hints.get("inversion_time"), 0.0)
    te = _float_or(hints.get("echo_time"), 0.0)
    if _FLAIR_RE.search(text):
        return "FLAIR"
    # Fluid attenuation needs a long inversion time (~2000-2800 ms at 1.5-3 T) and a T2
    # weighting (long TE); a T1 inversion recovery (TI ~800 ms) is not a FLAIR.
    if ti >= 1500 and te >= 60 and ("IR" in scanning or "tir" in sequence):
        return "FLAIR"
    return "OTHER"


def _kind_hints(ds: Dataset, b_values: set[float]) -> dict[str, Any]:
    scanning = ds.get("ScanningSequence", "")
    return {
        "modality": ds.get("Modality", ""),
        "description": " ".join(
            str(ds.get(k, "") or "") for k in ("SeriesDescription", "ProtocolName")
        ),
        "image_type": list(ds.get("ImageType", []) or []),
        "sequence_name": ds.get("SequenceName", "") or "",
        "scanning_sequence": "\\".join(scanning) if not isinstance(scanning, str) else scanning,
        "inversion_time": ds.get("InversionTime"),
        "echo_time": ds.get("EchoTime"),
        "b_values": b_values,
    }


def burned_in_reason(ds: Dataset) -> str:
    """Why ``ds`` is flagged or suspected to carry burned-in annotation ('' when not).

    Flagged: BurnedInAnnotation YES. Suspected: secondary capture SOP classes, and screen
    saves - ImageType SECONDARY (or SCREEN SAVE/CAPTURE) unless the image type names a
    computed map or reformat (ADC, TRACEW, MPR...), which scanners legitimately mark derived.
    """
    if str(ds.get("BurnedInAnnotation", "") or "").upper() == "YES":
        return _("Flagged with burned-in annotation (BurnedInAnnotation = YES).")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class.startswith(_SECONDARY_CAPTURE_PREFIX):
        return _("Suspected burned-in annotation: secondary capture image.")
    image_type = [str(v).upper() for v in ds.get("ImageType", []) or []]
    if any(v in {"SCREEN SAVE", "SCREENSHOT", "CAPTURE"} for v in image_type):
        return _("Suspected burned-in annotation: screen capture (ImageType).")
    if "SECONDARY" in image_type[:2] and not _MAP_IMAGE_TYPES & set(image_type):
        return _("Suspected burned-in annotation: secondary image (ImageType %(value)s).") % {
            "value": "\\".join(image_type)
        }
    return ""


# --- building volumes ---------------------------------------------------------------------
def dicom_volumes_build(slices: list[DicomSlice], *, secret: str | bytes) -> list[BuiltVolume]:
    """Groups ``slices`` by SeriesInstanceUID and builds one de-identified volume per series.

    A series holding several diffusion weightings at the same positions (b=0 and b=1000 in
    one series, as Siemens and GE export them) is split by b-value: the highest b-value is the
    DWI volume, the others are stored as OTHER beside it.
    """
    groups: dict[str, list[DicomSlice]] = {}
    for item in slices:
        groups.setdefault(item.series_uid, []).append(item)
    volumes: list[BuiltVolume] = []
    for series_uid, members in groups.items():
        _check_consistent(members)
        parts = _split_by_position(members)
        for part_index, (b_value, part) in enumerate(parts):
            suffix = "" if part_index == 0 else f"|b={b_value:g}"
            volumes.append(
                _volume(
                    part,
                    series_uid=series_uid,
                    uid_suffix=suffix,
                    secret=secret,
                    split_b=b_value if len(parts) > 1 else None,
                )
            )
    return volumes


def _check_consistent(members: list[DicomSlice]) -> None:
    first = members[0]
    for item in members[1:]:
        if (item.rows, item.cols) != (first.rows, first.cols):
            raise _bad(
                _("The slices of one series have different sizes (Rows/Columns)."),
                item.file,
                expected=[first.rows, first.cols],
                found=[item.rows, item.cols],
            )
        if not np.allclose(item.iop, first.iop, atol=1e-4):
            raise _bad(_("The slices of one series have different orientations."), item.file)
        if not np.allclose(item.pixel_spacing, first.pixel_spacing, rtol=1e-4, atol=1e-6):
            raise _bad(_("The slices of one series have different pixel spacings."), item.file)
        if item.has_geometry != first.has_geometry:
            raise _bad(_("Some slices of the series lack position or orientation."), item.file)


def _normal(iop: np.ndarray) -> np.ndarray:
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    norm = np.linalg.norm(normal)
    if norm < 1e-6:
        raise ApplicationError(_("ImageOrientationPatient is degenerate."), {})
    return np.asarray(normal / norm, dtype=np.float64)


def _split_by_position(members: list[DicomSlice]) -> list[tuple[float, list[DicomSlice]]]:
    """[(b-value, slices)] with unique positions in each part; highest b-value first."""
    normal = _normal(members[0].iop)
    positions = np.array([m.ipp @ normal for m in members])
    if len(members) == 1 or np.unique(np.round(positions, 3)).size == len(members):
        return [(max((m.b_value or 0.0) for m in members), members)]
    by_b: dict[float, list[DicomSlice]] = {}
    for m in members:
        by_b.setdefault(float(m.b_value or 0.0), []).append(m)
    for part in by_b.values():
        pos = np.round(np.array([m.ipp @ normal for m in part]), 3)
        if len(by_b) == 1 or np.unique(pos).size != len(part):
            dup = next(m for m, p in zip(part, pos, strict=True) if (pos == p).sum() > 1)
            raise _bad(
                _(
                    "Several slices of the series lie at the same position (several echoes, "
                    "time points or diffusion directions); upload one volume per series."
                ),
                dup.file,
            )
    return sorted(by_b.items(), key=lambda kv: -kv[0])


def _volume(
    members: list[DicomSlice],
    *,
    series_uid: str,
    uid_suffix: str,
    secret: str | bytes,
    split_b: float | None,
) -> BuiltVolume:
    first = members[0]
    normal = _normal(first.iop)
    positions = np.array([m.ipp @ normal for m in members])
    order = np.argsort(positions, kind="stable")
    members = [members[i] for i in order]
    positions = positions[order]
    n = len(members)
    ps_row, ps_col = first.pixel_spacing
    ds0 = first.dataset
    if n > 1:
        steps = np.diff(positions)
        dz = float(np.median(steps))
        if np.abs(steps - dz).max() > _SPACING_TOLERANCE * dz + 1e-3:
            worst = int(np.argmax(np.abs(steps - dz)))
            raise _bad(
                _("The slices are not evenly spaced (a missing or duplicate slice?)."),
                members[worst + 1].file,
                expected_mm=round(dz, 4),
                found_mm=round(float(steps[worst]), 4),
            )
        slice_vector = (members[-1].ipp - members[0].ipp) / (n - 1)
    else:
        dz = (
            _float_or(ds0.get("SpacingBetweenSlices"), 0.0)
            or _float_or(ds0.get("SliceThickness"), 0.0)
            or 1.0
        )
        slice_vector = normal * dz
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = first.iop[:3] * ps_col
    affine_lps[:3, 1] = first.iop[3:] * ps_row
    affine_lps[:3, 2] = slice_vector
    affine_lps[:3, 3] = members[0].ipp
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps

    array = _stack(members)
    # The full check on the first header; every other slice only for its explicit flag
    # (SOP class and image type are series-level in practice).
    reason = burned_in_reason(ds0)
    if not reason and any(
        str(m.dataset.get("BurnedInAnnotation", "") or "").upper() == "YES" for m in members[1:]
    ):
        reason = _("Flagged with burned-in annotation (BurnedInAnnotation = YES).")
    if not first.has_geometry and not reason:
        raise _bad(
            _("The image has no ImagePositionPatient, ImageOrientationPatient or PixelSpacing."),
            first.file,
        )

    # Kind and descriptors come from the original header; then the header is de-identified
    # and only then summarised.
    b_values = {m.b_value for m in members if m.b_value is not None}
    kind = series_kind_detect(_kind_hints(ds0, b_values))
    if split_b is not None and kind == "DWI" and uid_suffix:
        kind = "OTHER"  # the lower b-value volume(s) of a split DWI series (b=0...)
    phi = phi_values(ds0)
    description = descriptor_clean(str(ds0.get("SeriesDescription", "") or ""), phi)
    if split_b is not None:
        description = f"{description} b={split_b:g}".strip()
    study_description = descriptor_clean(str(ds0.get("StudyDescription", "") or ""), phi)
    dataset_deidentify(ds0, secret=secret)
    header = header_summary(
        ds0,
        members=members,
        secret=secret,
        series_uid=uid_remap(series_uid + uid_suffix, secret=secret),
        array=array,
        b_values=sorted(b_values),
        description=description,
    )
    return BuiltVolume(
        array=array,
        spacing=(abs(dz) if n > 1 else dz, float(ps_row), float(ps_col)),
        affine=affine,
        kind=kind,
        series_uid=header["SeriesInstanceUID"],
        study_uid=header["StudyInstanceUID"],
        description=description,
        study_description=study_description,
        header=header,
        quarantine_reason=reason,
        files=sorted({m.file for m in members}),
    )


def _stack(members: list[DicomSlice]) -> np.ndarray:
    """The (z, y, x) array with RescaleSlope/Intercept applied, in the smallest exact dtype.

    Stored values stay integers when every slope is 1 and every intercept an integer (CT HU,
    most MR), else float32 (real-valued maps, Philips scaling). One preallocated array, one
    vectorised rescale.
    """
    n, rows, cols = len(members), members[0].rows, members[0].cols
    raw_dtype = np.result_type(*{m.pixels.dtype.newbyteorder("=") for m in members})
    raw = np.empty((n, rows, cols), dtype=raw_dtype)
    for index, m in enumerate(members):
        raw[index] = m.pixels
    slopes = np.array([m.slope for m in members], dtype=np.float64)
    intercepts = np.array([m.intercept for m in members], dtype=np.float64)
    if np.all(slopes == 1.0) and np.all(intercepts == 0.0):
        return raw
    if np.all(slopes == 1.0) and np.all(intercepts == np.round(intercepts)):
        lo = float(raw.min()) + intercepts.min()
        hi = float(raw.max()) + intercepts.max()
        for dtype in (np.int16, np.int32):
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                shifted: np.ndarray = raw.astype(dtype)
                shifted += intercepts.astype(dtype)[:, None, None]
                return shifted
    out = np.empty(raw.shape, dtype=np.float32)
    np.multiply(raw, slopes.astype(np.float32)[:, None, None], out=out, casting="unsafe")
    out += intercepts.astype(np.float32)[:, None, None]
    return out


# --- the stored header summary -------------------------------------------------------------
_SUMMARY_KEYWORDS = (
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "MagneticFieldStrength",
    "SOPClassUID",
    "ImageType",
    "SeriesNumber",
    "BodyPartExamined",
    "PatientPosition",
    "PatientAge",
    "PatientSex",
    "ScanningSequence",
    "SequenceVariant",
    "ScanOptions",
    "MRAcquisitionType",
    "SequenceName",
    "RepetitionTime",
    "EchoTime",
    "InversionTime",
    "FlipAngle",
    "EchoTrainLength",
    "SliceThickness",
    "SpacingBetweenSlices",
    "KVP",
    "ConvolutionKernel",
    "PhotometricInterpretation",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "StudyInstanceUID",
    "FrameOfReferenceUID",
    "ProtocolName",
    "StudyDescription",
    "BurnedInAnnotation",
    "PatientIdentityRemoved",
)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of a decoded DICOM value (DS/IS become float/int, bytes are dropped)."""
    if value is None or isinstance(value, bytes | bytearray):
        return None
    if isinstance(value, list | tuple | MultiValue):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float | Decimal):
        out = float(value)
        return out if np.isfinite(out) else None
    return str(value)


def header_summary(
    ds: Dataset,
    *,
    members: list[DicomSlice],
    secret: str | bytes,
    series_uid: str,
    array: np.ndarray,
    b_values: list[float],
    description: str,
) -> dict[str, Any]:
    """The allow-listed, de-identified header kept in ``Series.header``.

    ``ds`` must already be de-identified (UIDs re-mapped). Per-slice lists are in stored slice
    order (index z), so a DICOM SEG export can reference the source instances: remapped
    SOPInstanceUID (with the frame number for multi-frame sources) and ImagePositionPatient.
    """
    summary: dict[str, Any] = {}
    for keyword in _SUMMARY_KEYWORDS:
        if keyword in ds:
            value = _jsonable(ds[keyword].value)
            if value not in (None, "", []):
                summary[keyword] = value
    summary["SeriesInstanceUID"] = series_uid
    summary.setdefault("StudyInstanceUID", uid_remap(members[0].study_uid, secret=secret))
    summary["SeriesDescription"] = description
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        summary["TransferSyntaxUID"] = str(meta.TransferSyntaxUID)
    if b_values:
        summary["DiffusionBValue"] = max(b_values)
        summary["b_values"] = [float(b) for b in b_values]
    summary["per_slice"] = {
        "SOPInstanceUID": [uid_remap(m.sop_uid, secret=secret) for m in members],
        "ImagePositionPatient": [[round(float(v), 6) for v in m.ipp] for m in members],
        "frame": [m.frame + 1 for m in members] if any(m.frame for m in members) else None,
        "RescaleSlope": sorted({m.slope for m in members}),
        "RescaleIntercept": sorted({m.intercept for m in members}),
    }
    summary["stored_dtype"] = str(array.dtype)
    summary["deidentification"] = deidentification_summary()
    return summary
