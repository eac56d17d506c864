"""What a series is: its diffusion b-value, its kind (DWI, ADC, eADC, FLAIR) from the
header's words, and whether its pixels may carry burned-in text."""

from __future__ import annotations

import re
import struct
from typing import Any

from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .header import float_or

#: Secondary capture image storage SOP classes: screenshots, usually with burned-in text.
_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


#: ImageType values of quantitative maps: derived, but computed, not captured from a screen.
_MAP_IMAGE_TYPES = frozenset(
    {"ADC", "DIFFUSION", "TRACEW", "TRACE", "FA", "MPR", "REFORMATTED", "PROJECTION IMAGE"}
)


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
        return float_or(ds.DiffusionBValue, 0.0)
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
    ti = float_or(hints.get("inversion_time"), 0.0)
    te = float_or(hints.get("echo_time"), 0.0)
    if _FLAIR_RE.search(text):
        return "FLAIR"
    # Fluid attenuation needs a long inversion time (~2000-2800 ms at 1.5-3 T) and a T2
    # weighting (long TE); a T1 inversion recovery (TI ~800 ms) is not a FLAIR.
    if ti >= 1500 and te >= 60 and ("IR" in scanning or "tir" in sequence):
        return "FLAIR"
    return "OTHER"


def kind_hints(ds: Dataset, b_values: set[float]) -> dict[str, Any]:
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
