"""Rows to arrays: a case's series as co-registered volumes on its reference grid.

The network sees DWI, ADC and FLAIR of one slice as channels, so they must share one voxel
grid. The reference is DWI when present (acute lesions are defined on diffusion imaging),
FLAIR otherwise; a series on another grid is resampled onto the reference through the two
series' affines (voxel -> patient mm), never by simply matching array indices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from django.utils.translation import gettext as _
from scipy import ndimage

from cases import storage
from cases.models import Case, Series
from strokeaid_site.errors import ApplicationError

#: Input kinds the network understands, in the order tried for the reference grid.
MODEL_KINDS = ("DWI", "ADC", "FLAIR")
#: Kinds that can carry the reference grid (ADC alone cannot define an acute lesion).
REFERENCE_KINDS = ("DWI", "FLAIR")


class SeriesMissingError(ApplicationError):
    """The case lacks the series needed to predict or train."""


@dataclass
class CaseVolumes:
    """A case's volumes on the grid of its reference series.

    Attributes:
        case_id: the case.
        reference: the reference series (DWI when present, else FLAIR).
        series: ``{kind: Series}`` used (one per kind).
        volumes: ``{kind: float32 (z, y, x)}`` on the reference grid.
        spacing: reference voxel size (z, y, x) in mm.
        resampled: kinds that had to be resampled onto the reference grid.
    """

    case_id: int
    reference: Series
    series: dict[str, Series]
    volumes: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resampled: list[str] = field(default_factory=list)


def series_by_kind(series: Iterable[Series]) -> dict[str, Series]:
    """One series per model kind: the newest usable (not quarantined) one of each kind."""
    chosen: dict[str, Series] = {}
    for s in sorted(series, key=lambda s: s.pk):
        if s.kind in MODEL_KINDS and not s.quarantined:
            chosen[s.kind] = s  # later ids win: a re-upload replaces an earlier series
    return chosen


def reference_kind(kinds: Iterable[str]) -> str | None:
    available = set(kinds)
    return next((k for k in REFERENCE_KINDS if k in available), None)


def _zyx_matrix(affine: Any) -> npt.NDArray[np.float64]:
    """The 4x4 affine re-expressed for (z, y, x) index order."""
    a = np.asarray(affine, dtype=np.float64)
    perm = np.zeros((4, 4))
    perm[0, 2] = perm[1, 1] = perm[2, 0] = perm[3, 3] = 1.0
    return a @ perm  # (z, y, x, 1) -> (x, y, z, 1) -> mm


def same_grid(a: Series, b: Series) -> bool:
    return list(a.shape) == list(b.shape) and np.allclose(
        np.asarray(a.affine, dtype=float), np.asarray(b.affine, dtype=float), atol=1e-3
    )


def resample_to(
    array: npt.NDArray[Any], *, source: Series, target: Series, order: int = 1
) -> npt.NDArray[np.float32]:
    """Resample ``array`` (on ``source``'s grid) onto ``target``'s grid (trilinear default)."""
    src = _zyx_matrix(source.affine)
    dst = _zyx_matrix(target.affine)
    matrix = np.linalg.inv(src) @ dst  # target index -> mm -> source index
    out: npt.NDArray[np.float32] = ndimage.affine_transform(
        np.asarray(array, dtype=np.float32),
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=tuple(int(n) for n in target.shape),
        order=order,
        mode="constant",
        cval=float(np.min(array)) if array.size else 0.0,
    )
    return out.astype(np.float32, copy=False)


def load_series_array(series: Series) -> npt.NDArray[Any]:
    """The stored voxel array of ``series`` (memory-mapped on local disk)."""
    volume = getattr(series, "volume", None)
    if volume is None:
        raise SeriesMissingError(
            _("Series %(kind)s has no stored volume.") % {"kind": series.kind},
            {"series": series.pk},
        )
    return storage.read_array(volume.key, mmap=True)


def case_volumes_load(*, case: Case, series: Iterable[Series] | None = None) -> CaseVolumes:
    """Loads DWI/ADC/FLAIR of ``case`` on the reference grid.

    Raises:
        SeriesMissingError: the case has neither DWI nor FLAIR (nothing to segment on).
    """
    if series is None:
        series = Series.objects.filter(case=case).select_related("volume")
    chosen = series_by_kind(series)
    ref_kind = reference_kind(chosen)
    if ref_kind is None:
        raise SeriesMissingError(
            _(
                "Case %(code)s has no DWI or FLAIR series: a prediction needs at least one of "
                "them (lesions are segmented on diffusion or FLAIR images)."
            )
            % {"code": case.code},
            {"case": case.pk, "series_kinds": sorted(chosen)},
        )
    ref = chosen[ref_kind]
    out = CaseVolumes(
        case_id=case.pk,
        reference=ref,
        series=chosen,
        spacing=tuple(float(s) for s in ref.spacing),  # type: ignore[arg-type]
    )
    for kind, s in chosen.items():
        array = load_series_array(s)
        if same_grid(s, ref):
            out.volumes[kind] = np.asarray(array, dtype=np.float32)
        else:
            out.volumes[kind] = resample_to(array, source=s, target=ref)
            out.resampled.append(kind)
    return out


def mask_to_reference(
    mask: npt.NDArray[Any], *, mask_series: Series, reference: Series
) -> npt.NDArray[np.uint8]:
    """A label mask drawn on ``mask_series`` brought to the reference grid (nearest)."""
    if same_grid(mask_series, reference):
        return np.asarray(mask, dtype=np.uint8)
    return resample_to(mask, source=mask_series, target=reference, order=0).astype(np.uint8)
