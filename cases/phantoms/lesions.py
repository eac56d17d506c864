"""Etiology-specific lesion patterns (TOAST subtypes) drawn on a posed phantom grid.

Each etiology has a *recipe* that decides how many lesions, where (vascular territory,
cortical / insular / deep / border-zone location, hemisphere) and how large, following the
imaging patterns neurologists use:

* cardioembolic -- emboli scatter: usually 2-5 cortical lesions in several territories,
  frequently bilateral, often involving the insula;
* atherothrombotic -- one hemisphere, one territory: a chain of small border-zone lesions
  (hypoperfusion distal to a stenosis) or one large territorial MCA infarct;
* lacunar -- one small deep infarct (< 15 mm) of a perforating artery;
* cryptogenic -- one medium cortical-subcortical infarct;
* other (determined) -- here a posterior-circulation infarct (cerebellum or occipital PCA
  cortex), e.g. after vertebral dissection.

Shapes are perturbed ellipsoids with ragged borders, clipped to brain tissue and to their
hemisphere. Everything is driven by a ``numpy.random.Generator`` and is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .anatomy import BaseAnatomy, Grid, Pose

ETIOLOGIES: tuple[str, ...] = (
    "atherothrombotic",
    "cardioembolic",
    "cryptogenic",
    "lacunar",
    "other",
)


@dataclass
class LesionSpec:
    """A lesion to draw: region to pick its centre from, size and descriptive tags.

    Attributes:
        region: candidate region name in :attr:`BaseAnatomy.regions`.
        hemisphere: ``"left"`` or ``"right"`` (MNI x < 0 is left).
        radii_mm: (rz, ry, rx) semi-axes before the border perturbation.
        irregularity: amplitude of the border perturbation (0 = ellipsoid).
        location: ``cortical``, ``insular``, ``deep``, ``border-zone`` or ``cerebellar``.
        territory: arterial territory (``MCA``, ``ACA``, ``PCA``, ``ACA/MCA``, ``SCA/PICA``).
        near_mni: optional (x, y, z) the centre should be close to (for lesion chains).
    """

    region: str
    hemisphere: str
    radii_mm: tuple[float, float, float]
    irregularity: float
    location: str
    territory: str
    near_mni: tuple[float, float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# Fallbacks when a region has no candidates on a coarse grid (or in the analytic brain).
_REGION_FALLBACK = {
    "insular": "cortical_mca",
    "deep_thalamus": "deep",
    "deep": "deep_wm",
    "border_internal": "deep_wm",
    "border_cortical": "cortical_mca",
    "cortical_aca": "cortical_mca",
    "cortical_pca": "cortical_mca",
    "cerebellar": "cortical_pca",
    "mca_core": "tissue",
    "cortical_mca": "tissue",
    "periventricular": "deep_wm",
    "deep_wm": "tissue",
}


def _region_chain(region: str) -> list[str]:
    chain = [region]
    while chain[-1] in _REGION_FALLBACK:
        chain.append(_REGION_FALLBACK[chain[-1]])
    return chain


def _hemi() -> tuple[str, str]:
    return ("left", "right")


def _cardioembolic(rng: np.random.Generator) -> list[LesionSpec]:
    # Emboli from the heart shower several territories; the insula (MCA M2 branches) is
    # typically involved. About 1 in 7 cases shows a single insular-cortical infarct.
    if rng.random() < 0.15:
        h = str(rng.choice(_hemi()))
        r = float(rng.uniform(10, 15))
        return [
            LesionSpec("insular", h, (rng.uniform(7.0, 9.5), r, r * 0.8), 0.3, "insular", "MCA")
        ]
    n = int(rng.integers(2, 6))
    bilateral = rng.random() < 0.65
    first = str(rng.choice(_hemi()))
    specs: list[LesionSpec] = []
    want_insula = rng.random() < 0.7
    for idx in range(n):
        if bilateral:
            hemi = first if idx % 2 == 0 else ("right" if first == "left" else "left")
        else:
            hemi = first
        if idx == 0 and want_insula:
            region, loc, terr = "insular", "insular", "MCA"
        else:
            region = str(
                rng.choice(
                    ["cortical_mca", "insular", "cortical_aca", "cortical_pca"],
                    p=[0.6, 0.15, 0.15, 0.1],
                )
            )
            loc = "insular" if region == "insular" else "cortical"
            terr = {"cortical_mca": "MCA", "insular": "MCA", "cortical_aca": "ACA"}.get(
                region, "PCA"
            )
        ry = float(rng.uniform(4.5, 11.0))
        rx = ry * float(rng.uniform(0.6, 1.0))
        rz = float(rng.uniform(6.0, 8.5))
        specs.append(LesionSpec(region, hemi, (rz, ry, rx), 0.35, loc, terr))
    return specs


def _atherothrombotic(rng: np.random.Generator) -> list[LesionSpec]:
    hemi = str(rng.choice(_hemi()))
    if rng.random() < 0.5:
        # Large territorial MCA infarct (carotid/MCA stenosis with artery-to-artery embolism
        # or occlusion): large, cortical-subcortical, confined to one hemisphere.
        ry = float(rng.uniform(18.0, 27.0))
        rx = ry * float(rng.uniform(0.55, 0.8))
        rz = float(rng.uniform(9.0, 11.0))
        return [LesionSpec("mca_core", hemi, (rz, ry, rx), 0.25, "cortical", "MCA")]
    # Border-zone "rosary": a chain of small lesions along the deep watershed (corona
    # radiata) or, less often, the cortical ACA/MCA watershed, distal to a stenosis.
    internal = rng.random() < 0.7
    region = "border_internal" if internal else "border_cortical"
    terr = "MCA" if internal else "ACA/MCA"
    n = int(rng.integers(3, 7))
    specs = []
    for _ in range(n):
        r = float(rng.uniform(3.0, 5.5))
        specs.append(
            LesionSpec(
                region, hemi, (float(rng.uniform(6.0, 7.0)), r, r * 0.85), 0.2, "border-zone", terr
            )
        )
    specs[0].extra["chain"] = True
    return specs


def _lacunar(rng: np.random.Generator) -> list[LesionSpec]:
    # One small deep infarct; axial diameter < 15 mm by definition (radius <= 6.2 mm, border
    # perturbation <= 12 %), through-plane 2-3 slices of 5 mm.
    hemi = str(rng.choice(_hemi()))
    region = "deep_thalamus" if rng.random() < 0.25 else "deep"
    terr = "PCA" if region == "deep_thalamus" else "MCA"
    ry = float(rng.uniform(2.8, 6.2))
    rx = ry * float(rng.uniform(0.7, 1.0))
    return [LesionSpec(region, hemi, (float(rng.uniform(6.0, 6.6)), ry, rx), 0.12, "deep", terr)]


def _cryptogenic(rng: np.random.Generator) -> list[LesionSpec]:
    # A single medium cortical-subcortical infarct without a clear source: bigger than an
    # embolic cortical spot, smaller than a territorial infarct.
    hemi = str(rng.choice(_hemi()))
    region = "cortical_mca" if rng.random() < 0.8 else "cortical_aca"
    terr = "MCA" if region == "cortical_mca" else "ACA"
    ry = float(rng.uniform(10.0, 15.0))
    rx = ry * float(rng.uniform(0.6, 0.9))
    return [LesionSpec(region, hemi, (float(rng.uniform(7.0, 9.5)), ry, rx), 0.3, "cortical", terr)]


def _other(rng: np.random.Generator) -> list[LesionSpec]:
    # Other determined cause, modelled as posterior circulation (e.g. vertebral dissection):
    # a cerebellar infarct and/or an occipital PCA cortical infarct on one side.
    hemi = str(rng.choice(_hemi()))
    specs = []
    if rng.random() < 0.6:
        r = float(rng.uniform(8.0, 14.0))
        specs.append(
            LesionSpec(
                "cerebellar",
                hemi,
                (float(rng.uniform(6.5, 9.0)), r, r * 0.8),
                0.3,
                "cerebellar",
                "SCA/PICA",
            )
        )
    if not specs or rng.random() < 0.3:
        r = float(rng.uniform(8.0, 13.0))
        specs.append(
            LesionSpec(
                "cortical_pca",
                hemi,
                (float(rng.uniform(6.5, 9.0)), r, r * 0.7),
                0.3,
                "cortical",
                "PCA",
            )
        )
    return specs


RECIPES = {
    "atherothrombotic": _atherothrombotic,
    "cardioembolic": _cardioembolic,
    "cryptogenic": _cryptogenic,
    "lacunar": _lacunar,
    "other": _other,
}


def lesion_specs(etiology: str, rng: np.random.Generator) -> list[LesionSpec]:
    """Return the lesion recipe for ``etiology`` (one of :data:`ETIOLOGIES`)."""
    try:
        recipe = RECIPES[etiology]
    except KeyError:
        raise ValueError(f"unknown etiology {etiology!r}; expected one of {ETIOLOGIES}") from None
    return recipe(rng)


def candidates(
    base: BaseAnatomy,
    region: str,
    hemisphere: str | None,
    placed: tuple[Grid, Pose] | None = None,
) -> np.ndarray:
    """MNI points (N, 3) of ``region`` on ``hemisphere``, following fallbacks when empty.

    With ``placed = (grid, pose)`` only points that land inside the posed grid count (one
    slice / voxel away from its border where the grid allows), so very thin slabs fall
    back to a region they do contain (e.g. no cerebellum in a 4-slice slab).
    """
    name: str | None = region
    while name is not None:
        pts = base.regions.get(name, np.empty((0, 3), np.float32))
        if hemisphere == "left":
            pts = pts[pts[:, 0] < -2.0]
        elif hemisphere == "right":
            pts = pts[pts[:, 0] > 2.0]
        if placed is not None and len(pts):
            grid, pose = placed
            idx = grid.ras_to_index(pose.mni_to_world(pts.astype(float)))
            hi = np.asarray(grid.shape) - 1.0
            margin = np.where(np.asarray(grid.shape) >= 5, 1.0, 0.0)
            pts = pts[np.all((idx >= margin - 0.49) & (idx <= hi - margin + 0.49), axis=1)]
        if len(pts):
            return pts
        name = _REGION_FALLBACK.get(name)
    raise ValueError(f"no candidate voxels for region {region!r}")


@dataclass
class DrawnLesion:
    """A lesion drawn on the output grid (local box + boolean mask) with its description."""

    slices: tuple[slice, slice, slice]
    mask: np.ndarray
    info: dict[str, Any]


def _blob_mask(
    rng: np.random.Generator,
    centre: np.ndarray,
    radii_mm: tuple[float, float, float],
    irregularity: float,
    grid: Grid,
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """Perturbed-ellipsoid mask around fractional index ``centre`` (k, j, i).

    The border radius is modulated by a few angular harmonics (lobulated infarct outline)
    plus smoothed noise (ragged edges); through-plane the perturbation is bounded so the
    slice span stays controlled (2-5 slices of 5 mm).
    """
    sp = np.asarray(grid.spacing)
    rmax = np.asarray(radii_mm) * (1.0 + irregularity) + sp
    lo = np.maximum(np.floor(centre - rmax / sp).astype(int), 0)
    hi = np.minimum(np.ceil(centre + rmax / sp).astype(int) + 1, np.asarray(grid.shape))
    sl = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    dz = ((np.arange(lo[0], hi[0]) - centre[0]) * sp[0])[:, None, None]
    dy = ((np.arange(lo[1], hi[1]) - centre[1]) * sp[1])[None, :, None]
    dx = ((np.arange(lo[2], hi[2]) - centre[2]) * sp[2])[None, None, :]
    phi = rng.uniform(0, math.pi)
    u = math.cos(phi) * dy + math.sin(phi) * dx
    v = -math.sin(phi) * dy + math.cos(phi) * dx
    rz, ry, rx = radii_mm
    rn = np.sqrt((dz / rz) ** 2 + (u / ry) ** 2 + (v / rx) ** 2) + 1e-6
    az = np.arctan2(v / rx, u / ry)
    el = (dz / rz) / rn
    pert = np.zeros(np.broadcast_shapes(rn.shape), dtype=float)
    for n, w in ((2, 0.5), (3, 0.35), (5, 0.2)):
        pert = pert + w * rng.uniform(-1, 1) * np.cos(n * az + rng.uniform(0, 2 * math.pi))
    pert = pert * (1.0 - 0.6 * el**2) + 0.2 * rng.uniform(-1, 1) * el
    shape = pert.shape
    noise = ndi.gaussian_filter(rng.standard_normal(shape), sigma=(0.0, *(1.5 / sp[1:] + 0.5)))
    noise /= max(float(noise.std()), 1e-6)
    boundary = 1.0 + irregularity * (pert + 0.25 * noise)
    boundary = np.clip(boundary, 0.88, 1.0 + irregularity)
    # Bound the through-plane extent so a lesion spans the intended number of slices.
    mask = (rn < boundary) & (np.abs(dz) <= rz * (1.0 + min(irregularity, 0.12)))
    # Even on coarse grids a lesion keeps its centre voxel.
    c = np.clip(np.round(centre).astype(int) - lo, 0, np.asarray(mask.shape) - 1)
    mask[c[0], c[1], c[2]] = True
    return sl, mask


def draw_lesions(
    rng: np.random.Generator,
    specs: list[LesionSpec],
    base: BaseAnatomy,
    grid: Grid,
    pose: Pose,
    tissue: np.ndarray,
    *,
    max_tries: int = 40,
    min_tissue: float = 0.7,
) -> list[DrawnLesion]:
    """Place and draw ``specs`` on the posed grid.

    Args:
        rng: random generator (consumed deterministically).
        specs: lesion recipes from :func:`lesion_specs`.
        base: neutral anatomy (candidate regions in MNI space).
        grid: the output grid.
        pose: head pose (MNI -> world).
        tissue: posed brain-parenchyma fraction (GM + WM), used to keep lesions in tissue.
        max_tries: attempts per lesion before accepting the best one.
        min_tissue: parenchyma fraction a voxel needs to belong to the lesion.

    Returns:
        One :class:`DrawnLesion` per spec.
    """
    min_slices = 2 if grid.spacing[0] <= 6.0 else 1
    drawn: list[DrawnLesion] = []
    chain_anchor: np.ndarray | None = None
    chain_step = np.zeros(3)
    for idx, spec in enumerate(specs):
        best: tuple[float, DrawnLesion] | None = None
        # On very coarse grids a region may have no usable voxel: widen it step by step.
        for region in _region_chain(spec.region):
            try:
                pts = candidates(base, region, spec.hemisphere, (grid, pose))
            except ValueError:
                continue
            for attempt in range(max_tries):
                chained = chain_anchor is not None and attempt < max_tries // 2
                if chained and spec.location == "border-zone":
                    # Next bead of the rosary: ~9-12 mm further along the watershed line.
                    assert chain_anchor is not None
                    target = chain_anchor + chain_step * (idx + rng.uniform(-0.15, 0.15))
                    d = np.linalg.norm(pts - target, axis=1)
                    near = np.argsort(d)[: max(1, min(len(d), 40))]
                    mni = pts[int(rng.choice(near))].astype(float)
                else:
                    mni = pts[int(rng.integers(len(pts)))].astype(float)
                # Jitter within a voxel so centres do not sit on slice centres only.
                mni = mni + rng.uniform(-0.5, 0.5, 3) * np.array(
                    [grid.spacing[2], grid.spacing[1], grid.spacing[0]]
                )
                centre = grid.ras_to_index(pose.mni_to_world(mni))
                if np.any(centre < -0.49) or np.any(centre > np.asarray(grid.shape) - 0.51):
                    continue
                kc, jc, ic = np.round(centre).astype(int)
                if tissue[kc, jc, ic] < min_tissue:
                    continue
                sl, m = _blob_mask(rng, centre, spec.radii_mm, spec.irregularity, grid)
                # Mostly-CSF voxels (sulci, ventricles) are not DWI-bright, so readers do not
                # include them in the infarct outline.
                m &= tissue[sl] > min_tissue
                # Infarcts respect the midline: keep voxels on the lesion's own hemisphere.
                kk, jj, ii = np.meshgrid(
                    np.arange(sl[0].start, sl[0].stop),
                    np.arange(sl[1].start, sl[1].stop),
                    np.arange(sl[2].start, sl[2].stop),
                    indexing="ij",
                )
                world = grid.index_to_ras(np.stack([kk, jj, ii], axis=-1))
                mx = pose.world_to_mni(world)[..., 0]
                m &= (mx < 0) if spec.hemisphere == "left" else (mx > 0)
                # Keep the connected part containing the centre (a lesion is one blob).
                lab, nlab = ndi.label(m)
                if nlab > 1:
                    c = tuple(int(v) for v in np.round(centre).astype(int) - [s.start for s in sl])
                    keep = (
                        lab[c] if lab[c] > 0 else int(np.argmax(np.bincount(lab.ravel())[1:]) + 1)
                    )
                    m = lab == keep
                n_slices = int(m.any(axis=(1, 2)).sum())
                if not m.any():
                    continue
                info = {
                    "centre_index": [float(v) for v in centre],
                    "centre_ras_mm": [float(v) for v in pose.mni_to_world(mni)],
                    "centre_mni_mm": [float(v) for v in mni],
                    "location": spec.location,
                    "territory": spec.territory,
                    "hemisphere": spec.hemisphere,
                    "n_slices": n_slices,
                }
                cand = DrawnLesion(sl, m, info)
                expected = (
                    (4.0 / 3.0)
                    * math.pi
                    * float(np.prod(spec.radii_mm))
                    / float(np.prod(grid.spacing))
                )
                score = min(1.0, float(m.sum()) / max(expected, 1.0))
                if n_slices >= min_slices and score > 0.45:
                    best = (score, cand)
                    break
                if best is None or score > best[0]:
                    best = (score, cand)
            if best is not None:
                break
        if best is None:
            raise RuntimeError(f"could not place lesion in region {spec.region!r}")
        lesion = best[1]
        drawn.append(lesion)
        if spec.location == "border-zone" and chain_anchor is None:
            chain_anchor = np.asarray(lesion.info["centre_mni_mm"])
            # Watershed chains run antero-posteriorly along the lateral ventricle.
            step = float(rng.uniform(9.0, 12.0)) * (1 if chain_anchor[1] < -10 else -1)
            chain_step = np.array([rng.uniform(-1.5, 1.5), step, rng.uniform(-2.0, 2.0)])
            chain_anchor = chain_anchor - chain_step * idx
    return drawn
