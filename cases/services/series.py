"""Series writes: register a voxel array as a series with its stored volume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Case, Series, Study, Volume
from cases.services.audit import audit_record
from strokeaid_site.errors import ApplicationError, ConflictError, ForbiddenError

if TYPE_CHECKING:
    from cases.phantoms import PhantomCase

# Stored voxel types: integers keep DICOM's stored values after rescale when they fit, floats
# keep ADC maps and rescaled data exactly; everything else is converted to float32.
_STORED_DTYPES = {np.dtype(t) for t in ("uint8", "int16", "uint16", "int32", "float32")}


# DWI: the upper edge sits at least this many times the normal-brain median above the
# background, so normal brain lands near mid-grey (~40 %) and acute infarcts -- typically
# 1.5-3 times as bright as normal brain at b = 1000 -- stay below white instead of clipping.
_DWI_BRAIN_MEDIAN_FACTOR = 2.5


def default_window(array: np.ndarray, kind: str | None = None) -> tuple[float, float]:
    """Window centre/width for the viewer's default display of a series.

    ADC, FLAIR and others: the 1st-99.5th percentile of the voxels above the 20th percentile.
    Percentiles rather than min/max: a few hot voxels must not wash out the whole image.

    DWI: lesions are the bright tail and may be far smaller than 0.5 % of the head (a lacune
    is ~0.03 %), so any upper percentile puts the normal brain near white and clips the very
    voxels a neurologist is looking for. Here the lower edge is the background (1st
    percentile of all voxels) and the upper edge the larger of the head's 99.9th percentile and
    ``_DWI_BRAIN_MEDIAN_FACTOR`` x its median (head = voxels above the mean, the usual
    intensity mask of an MR head): normal brain mid-grey, infarcts bright but distinguishable.
    """
    # A regular subsample (about 8 slices, ~128x128 in-plane) gives the same percentiles to
    # display precision at a fraction of the cost: this runs inside every upload.
    step = max(1, int(np.sqrt(array.shape[1] * array.shape[2] / 16384)))
    sample = np.asarray(array[:: max(1, array.shape[0] // 8), ::step, ::step], dtype=np.float32)
    if kind == "DWI":
        head = sample[sample > sample.mean()]
        if head.size:
            lo = float(np.percentile(sample, 1.0))
            p999, median = (float(v) for v in np.percentile(head, [99.9, 50.0]))
            hi = max(p999, lo + _DWI_BRAIN_MEDIAN_FACTOR * (median - lo))
            width = float(max(hi - lo, 1e-3))
            return float(lo + width / 2), width
    foreground = sample[sample > np.percentile(sample, 20)]
    if foreground.size == 0:
        foreground = sample.ravel()
    lo, hi = np.percentile(foreground, [1.0, 99.5])
    width = float(max(hi - lo, 1e-3))
    return float(lo + width / 2), width


def affine_from_geometry(spacing: tuple[float, float, float]) -> list[list[float]]:
    """A plain diagonal affine (x, y, z voxel -> mm) when the source gave none."""
    z, y, x = spacing
    return [[x, 0, 0, 0], [0, y, 0, 0], [0, 0, z, 0], [0, 0, 0, 1]]


def series_create_from_array(
    *,
    case: Case,
    kind: str,
    array: np.ndarray,
    spacing: tuple[float, float, float],
    affine: list[list[float]] | np.ndarray | None = None,
    source: str = Series.Source.NIFTI,
    series_uid: str,
    study: Study | None = None,
    description: str = "",
    header: dict[str, Any] | None = None,
    quarantine_reason: str = "",
) -> Series:
    """Stores ``array`` (z, y, x) as a new series of ``case`` and returns it.

    Preconditions: ``array`` is 3-D with at least one voxel, ``spacing`` is (z, y, x) mm and
    positive, ``series_uid`` is already de-identified. The volume file is written before the
    rows; if the rows cannot be written the file is removed, so nothing half-made remains.
    Call it inside ``storage.transactional()`` when creating several series at once: then a
    later failure removes this series' file too.
    """
    if kind not in Series.Kind.values:
        raise ApplicationError(_("Unknown series kind."), {"kind": kind})
    if array.ndim != 3 or min(array.shape) < 1:
        raise ApplicationError(_("A series must be a 3-D volume."), {"shape": list(array.shape)})
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ApplicationError(
            _("Voxel spacing must be three positive numbers."), {"spacing": list(spacing)}
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ApplicationError(_("The volume contains NaN or infinite values."), {})
    if array.dtype not in _STORED_DTYPES:
        array = array.astype(np.float32)
    if affine is None:
        affine = affine_from_geometry(spacing)
    # New ingestions only: existing series keep the window stored when they were created.
    center, width = default_window(array, kind)
    with storage.transactional():
        series = Series.objects.create(
            case=case,
            study=study,
            series_uid=series_uid,
            kind=kind,
            source=source,
            description=description[:200],
            shape=[int(n) for n in array.shape],
            spacing=[float(s) for s in spacing],
            affine=np.asarray(affine, dtype=float).tolist(),
            header=header or {},
            window_center=center,
            window_width=width,
            quarantined=bool(quarantine_reason),
            quarantine_reason=quarantine_reason[:200],
        )
        key, digest, nbytes = storage.write_array(
            storage.volume_key(series_id=series.pk, digest=series_uid.replace(".", "")[-16:]),
            array,
        )
        Volume.objects.create(
            series=series,
            key=key,
            dtype=str(array.dtype),
            sha256=digest,
            nbytes=nbytes,
            min_value=float(array.min()),
            max_value=float(array.max()),
        )
        if case.status == Case.Status.NEW:
            Case.objects.filter(pk=case.pk).update(status=Case.Status.IMAGED)
            case.status = Case.Status.IMAGED
    return series


def series_create_from_phantom(
    *,
    case: Case,
    phantom: PhantomCase,
    uid_stem: str,
    kinds: Sequence[str] = ("DWI", "ADC", "FLAIR"),
) -> dict[str, Series]:
    """Stores the co-registered series of a synthetic phantom (``cases.phantoms``) in ``case``.

    Demo data, tests and benchmarks use it to skip the DICOM round trip. Series UIDs are
    ``2.25.<uid_stem><n>`` (n = 1, 2, ... in ``kinds`` order); all or nothing.
    """
    with storage.transactional():
        return {
            kind: series_create_from_array(
                case=case,
                kind=kind,
                array=phantom.images[kind],
                spacing=phantom.spacing,
                affine=phantom.affine,
                source=Series.Source.NIFTI,
                series_uid=f"2.25.{uid_stem}{index}",
                description=f"Phantom {kind}",
            )
            for index, kind in enumerate(kinds, start=1)
        }


# --- quarantine --------------------------------------------------------------------------------
def _quarantine_manager_check(user: User) -> None:
    from accounts.roles import DATA_MANAGER, has_role

    if not has_role(user, DATA_MANAGER):
        raise ForbiddenError(_("Only data managers may release or delete quarantined series."))


def series_quarantine_release(*, user: User, series: Series, note: str) -> Series:
    """A data manager looked at a quarantined series and found no patient data in its pixels:
    it is used again (training, prediction, export). The reason and the note are audited."""
    _quarantine_manager_check(user)
    note = (note or "").strip()
    if not series.quarantined:
        raise ConflictError(_("This series is not quarantined."), {"series": series.pk})
    if len(note) < 3:
        raise ApplicationError(
            _("Say what you checked before releasing the series (a short note)."),
            {"field": "note"},
        )
    with transaction.atomic():
        reason = series.quarantine_reason
        Series.objects.filter(pk=series.pk).update(quarantined=False, quarantine_reason="")
        audit_record(
            actor=user,
            verb="series.quarantine_released",
            target=series,
            case=series.case,
            data={"reason": reason, "note": note[:500]},
        )
    series.refresh_from_db()
    return series


def series_delete(*, user: User, series: Series) -> None:
    """Deletes a quarantined series with its volume and masks (rows first, files after
    commit)."""
    _quarantine_manager_check(user)
    if not series.quarantined:
        raise ConflictError(
            _("Only quarantined series are deleted here; delete the case instead."),
            {"series": series.pk},
        )
    key = series.volume.key if hasattr(series, "volume") else ""
    series_id = series.pk
    with transaction.atomic():
        audit_record(
            actor=user,
            verb="series.deleted",
            target=series,
            case=series.case,
            data={"kind": series.kind, "reason": series.quarantine_reason},
        )
        series.delete()

    def _cleanup() -> None:
        if key:
            storage.delete(key)
        storage.delete_prefix(f"masks/{series_id}")

    transaction.on_commit(_cleanup)
