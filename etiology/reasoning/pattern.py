"""The lesion pattern of a label volume (an approved mask or a prediction), as a neurologist
reads it: how many infarcts, how big, on which side, in which arterial territories,
cortical or deep, the insula, a lacune, a border-zone chain.

Pure numpy/scipy. Territories, the insula and border zones need an :class:`Atlas` and a
:class:`Registration` of the study to MNI space; without them those fields are ``None``
(unknown), never guessed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.spatial.distance import pdist

from etiology.reasoning.atlas import ANTERIOR, POSTERIOR, TERRITORIES, Atlas
from etiology.reasoning.registration import Registration

#: Components smaller than this are noise or partial-volume specks, not infarcts.
MIN_LESION_ML = 0.01
#: A lacune: a single small deep infarct, under 15 mm (TOAST: < 1.5 cm).
LACUNE_MAX_MM = 15.0
#: A lesion reaching within this distance of the brain surface touches the cortex.
CORTEX_DEPTH_MM = 5.0
#: Lesions this far from a territory boundary are not border-zone lesions.
BORDER_ZONE_MM = 10.0
#: A lesion whose centre lies closer than this to the midline has no side.
MIDLINE_MM = 3.0


@dataclass
class LesionFeatures:
    volume_ml: float
    diameter_mm: float
    side: str | None  # "left", "right", or None on the midline
    cortical: bool
    territories: list[str] | None = None
    insula: bool | None = None
    border_zone: bool | None = None
    deep_grey: bool | None = None


@dataclass
class LesionPattern:
    """The pattern (the ``pattern`` object of the REST contract)."""

    count: int = 0
    volume_ml: float = 0.0
    largest_volume_ml: float = 0.0
    largest_diameter_mm: float = 0.0
    bilateral: bool = False
    sides: list[str] = field(default_factory=list)
    cortical: bool = False
    deep_small: bool = False
    territories: list[str] | None = None
    multi_territory: bool | None = None
    anterior: bool | None = None
    posterior: bool | None = None
    insula: bool | None = None
    border_zone: bool | None = None
    atlas: bool = False
    registration_overlap: float | None = None
    lesions: list[LesionFeatures] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["lesions"] = [asdict(les) for les in self.lesions]
        return data

    def features(self) -> dict[str, float]:
        """Numbers for a case-level model (unknown atlas fields as 0 with an
        ``atlas`` flag)."""
        territories = set(self.territories or [])
        return {
            "count": float(self.count),
            "log_volume_ml": float(np.log1p(self.volume_ml)),
            "log_largest_ml": float(np.log1p(self.largest_volume_ml)),
            "largest_diameter_mm": float(self.largest_diameter_mm),
            "bilateral": float(self.bilateral),
            "cortical": float(self.cortical),
            "deep_small": float(self.deep_small),
            "multi_territory": float(bool(self.multi_territory)),
            "posterior": float(bool(self.posterior)),
            "anterior_and_posterior": float(bool(self.anterior and self.posterior)),
            "insula": float(bool(self.insula)),
            "border_zone": float(bool(self.border_zone)),
            **{f"territory_{t}": float(t in territories) for t in TERRITORIES},
        }


def _lr_axis(affine_zyx: npt.NDArray[np.float64]) -> tuple[int, float]:
    """The array axis closest to patient left-right, and the sign of RAS x along it."""
    column = int(np.argmax(np.abs(affine_zyx[0, :3])))
    return column, float(np.sign(affine_zyx[0, column]) or 1.0)


def _diameter_mm(mask: npt.NDArray[np.bool_], spacing: tuple[float, float, float]) -> float:
    """Largest in-plane diameter (mm) of a lesion, over its slices."""
    best = 0.0
    for z in np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)):
        sl = mask[z]
        edge = sl & ~ndimage.binary_erosion(sl)
        ys, xs = np.nonzero(edge)
        if ys.size == 0:
            continue
        pts = np.c_[ys * spacing[1], xs * spacing[2]]
        if len(pts) > 400:
            pts = pts[:: len(pts) // 400 + 1]
        span = float(pdist(pts).max()) if len(pts) > 1 else 0.0
        best = max(best, span + min(spacing[1], spacing[2]))
    return best


def lesion_pattern(
    labels: npt.NDArray[Any],
    *,
    spacing: tuple[float, float, float],
    affine_zyx: npt.NDArray[np.float64],
    brain: npt.NDArray[np.bool_] | None = None,
    registration: Registration | None = None,
    atlas: Atlas | None = None,
    min_overlap: float = 0.8,
) -> LesionPattern:
    """The pattern of the lesions (voxels != 0) of ``labels`` ``(z, y, x)``.

    Args:
        labels: label volume; any non-zero value is lesion.
        spacing: ``(z, y, x)`` voxel size in mm.
        affine_zyx: ``(k, j, i, 1)`` -> RAS mm of the series.
        brain: brain mask (for cortical vs deep and the midline without an atlas).
        registration: the study registered to MNI (territories, insula, border zones, and
            the midline at MNI x = 0).
        atlas: the territory atlas.
        min_overlap: registrations with less overlap are not trusted for atlas answers.
    """
    lesion = np.asarray(labels) != 0
    voxel_ml = float(np.prod(spacing)) / 1000.0
    components, n = ndimage.label(lesion, structure=np.ones((3, 3, 3), dtype=bool))
    pattern = LesionPattern()
    if n == 0:
        return pattern
    use_atlas = (
        registration is not None and atlas is not None and registration.overlap >= min_overlap
    )
    pattern.atlas = use_atlas
    pattern.registration_overlap = registration.overlap if registration is not None else None
    depth = None
    if brain is not None and brain.shape == lesion.shape and brain.any():
        depth = np.stack(
            [
                ndimage.distance_transform_edt(b, sampling=spacing[1:])
                if b.any()
                else np.zeros(b.shape)
                for b in brain
            ]
        )
    lr_axis, lr_sign = _lr_axis(affine_zyx)
    midline_index = None
    if not use_atlas and brain is not None and brain.any():
        midline_index = float(np.nonzero(brain)[lr_axis].mean())
    features: list[LesionFeatures] = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        if box is None:
            continue
        mask = components[box] == index
        volume = float(mask.sum()) * voxel_ml
        if volume < MIN_LESION_ML:
            continue
        k, j, i = np.nonzero(mask)
        idx = np.c_[k + box[0].start, j + box[1].start, i + box[2].start].astype(np.float64)
        world = np.c_[idx, np.ones(len(idx))] @ affine_zyx.T
        centre_world = world[:, :3].mean(axis=0)
        cortical = bool(depth is not None and float(depth[box][mask].min()) <= CORTEX_DEPTH_MM)
        item = LesionFeatures(
            volume_ml=volume,
            diameter_mm=_diameter_mm(mask, spacing),
            side=None,
            cortical=cortical,
        )
        if use_atlas:
            assert registration is not None and atlas is not None
            mni = registration.to_mni(world[:, :3])
            x = float(mni[:, 0].mean())
            item.side = None if abs(x) < MIDLINE_MM else ("right" if x > 0 else "left")
            vox = atlas.lookup(mni)
            codes = atlas.territory[vox[:, 0], vox[:, 1], vox[:, 2]]
            counts = np.bincount(codes, minlength=len(TERRITORIES) + 1)[1:]
            # A territory counts when it holds at least a fifth of the lesion.
            item.territories = [
                t
                for t, c in zip(TERRITORIES, counts, strict=True)
                if c >= 0.2 * max(1, counts.sum())
            ] or [TERRITORIES[int(np.argmax(counts))]]
            item.insula = bool(atlas.insula[vox[:, 0], vox[:, 1], vox[:, 2]].mean() >= 0.1)
            item.deep_grey = bool(atlas.deep_grey[vox[:, 0], vox[:, 1], vox[:, 2]].mean() >= 0.3)
            centre_vox = atlas.lookup(registration.to_mni(centre_world[None]))[0]
            item.border_zone = bool(
                atlas.boundary_mm[tuple(centre_vox)] <= BORDER_ZONE_MM and volume < 5.0
            )
        elif midline_index is not None:
            offset_mm = (idx[:, lr_axis].mean() - midline_index) * spacing[lr_axis] * lr_sign
            item.side = (
                None if abs(offset_mm) < MIDLINE_MM else ("right" if offset_mm > 0 else "left")
            )
        features.append(item)
    if not features:
        return pattern
    pattern.lesions = features
    pattern.count = len(features)
    pattern.volume_ml = float(sum(f.volume_ml for f in features))
    largest = max(features, key=lambda f: f.volume_ml)
    pattern.largest_volume_ml = largest.volume_ml
    pattern.largest_diameter_mm = max(f.diameter_mm for f in features)
    pattern.sides = sorted({f.side for f in features if f.side})
    pattern.bilateral = len(pattern.sides) == 2
    pattern.cortical = any(f.cortical for f in features)
    pattern.deep_small = (
        len(features) == 1
        and not features[0].cortical
        and features[0].diameter_mm < LACUNE_MAX_MM
        and depth is not None
    )
    if use_atlas:
        territories = sorted({t for f in features for t in (f.territories or [])})
        pattern.territories = territories
        pattern.anterior = any(t in ANTERIOR for t in territories)
        pattern.posterior = any(t in POSTERIOR for t in territories)
        # Several territories: more than one arterial tree, or both hemispheres' trees.
        per_side = {(f.side, t) for f in features for t in (f.territories or [])}
        pattern.multi_territory = len(territories) > 1 or len(per_side) > 1
        pattern.insula = any(bool(f.insula) for f in features)
        small_border = [f for f in features if f.border_zone]
        # A border-zone pattern: a chain of small lesions along the watershed of one side.
        pattern.border_zone = len(small_border) >= 2 and len({f.side for f in small_border}) == 1
    return pattern
