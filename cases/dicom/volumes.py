"""Slices to volumes: grouped by series, b-value and position, checked for consistency,
ordered along the slice normal, de-identified."""

from __future__ import annotations

import numpy as np
from django.utils.translation import gettext as _

from strokeaid_site.errors import ApplicationError

from .deid import (
    dataset_deidentify,
    descriptor_clean,
    phi_values,
    uid_remap,
)
from .header import bad_file, float_or
from .kind import burned_in_reason, kind_hints, series_kind_detect
from .slices import BuiltVolume, DicomSlice
from .summary import header_summary

#: Relative tolerance for "evenly spaced slices" (a missing slice would distort geometry).
_SPACING_TOLERANCE = 0.1


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
            raise bad_file(
                _("The slices of one series have different sizes (Rows/Columns)."),
                item.file,
                expected=[first.rows, first.cols],
                found=[item.rows, item.cols],
            )
        if not np.allclose(item.iop, first.iop, atol=1e-4):
            raise bad_file(_("The slices of one series have different orientations."), item.file)
        if not np.allclose(item.pixel_spacing, first.pixel_spacing, rtol=1e-4, atol=1e-6):
            raise bad_file(_("The slices of one series have different pixel spacings."), item.file)
        if item.has_geometry != first.has_geometry:
            raise bad_file(_("Some slices of the series lack position or orientation."), item.file)


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
            raise bad_file(
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
            raise bad_file(
                _("The slices are not evenly spaced (a missing or duplicate slice?)."),
                members[worst + 1].file,
                expected_mm=round(dz, 4),
                found_mm=round(float(steps[worst]), 4),
            )
        slice_vector = (members[-1].ipp - members[0].ipp) / (n - 1)
    else:
        dz = (
            float_or(ds0.get("SpacingBetweenSlices"), 0.0)
            or float_or(ds0.get("SliceThickness"), 0.0)
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
        raise bad_file(
            _("The image has no ImagePositionPatient, ImageOrientationPatient or PixelSpacing."),
            first.file,
        )

    # Kind and descriptors come from the original header; then the header is de-identified
    # and only then summarised.
    b_values = {m.b_value for m in members if m.b_value is not None}
    kind = series_kind_detect(kind_hints(ds0, b_values))
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
