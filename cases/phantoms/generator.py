"""Phantom case generation: posed anatomy, etiology lesions, DWI / ADC / FLAIR signal models.

Signal model (per voxel, tissue fractions f_t from the posed anatomy):

* b0 (T2-weighted) signal ``S0 = sum_t f_t * s0_t``;
* DWI trace at b = 1000 s/mm^2: ``S = sum_t f_t * s0_t * exp(-b * ADC_t)`` -- signals of mixed
  tissues add, so partial-volume voxels behave like real ones;
* ADC map ``= -ln(S / S0) / b`` in 1e-6 mm^2/s (normal WM ~ 700-750, GM ~ 850, CSF ~ 3000),
  zero outside the head as scanners mask the background;
* FLAIR: CSF suppressed (dark), GM > WM, scalp fat bright.

Acute infarcts (cytotoxic oedema) lower ADC to ~ 400-500 and lengthen T2 a little, so DWI is
bright and FLAIR mildly bright (depending on time since onset). Old small-vessel white-matter
hyperintensities are bright on FLAIR, not restricted (ADC slightly raised) -- the mimics a
model must learn to ignore. Magnitude images get Rician noise and a smooth coil bias field;
ADC gets the noise propagated from the two b-values (noisy in CSF, as in real maps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .anatomy import (
    DEFAULT_SHAPE,
    Grid,
    Pose,
    base_anatomy,
    pose_tissues,
    spacing_for_shape,
)
from .lesions import ETIOLOGIES, DrawnLesion, LesionSpec, draw_lesions, lesion_specs
from .workup import hidden_mechanism, phantom_workup

#: Default etiology name -> label value mapping (the data migration's defaults).
DEFAULT_LABEL_VALUES: dict[str, int] = {
    "atherothrombotic": 1,
    "cardioembolic": 2,
    "cryptogenic": 3,
    "lacunar": 4,
    "other": 5,
}

#: Series kinds generated for every case, in the order a stroke protocol acquires them.
SERIES_KINDS: tuple[str, ...] = ("DWI", "ADC", "FLAIR")

B_VALUE = 1000.0  # s/mm^2

#: ADC storage units -> factor from the generator's 10^-6 mm^2/s.
ADC_UNITS: dict[str, float] = {"1e-6": 1.0, "1e-3": 1e-3, "mm2/s": 1e-6}


def acquisition_variant(rng: np.random.Generator) -> dict[str, Any]:
    """Random acquisition settings unlike the defaults (for robustness benchmarks and tests).

    Matrix 128 or 256 (in-plane pixels 0.9-2.0 mm over a 220-256 mm field of view), 16-30
    slices of 4-6.5 mm, an ADC unit drawn from :data:`ADC_UNITS`, scanner intensities
    scaled by 10^-2..10^2 and noise 0.6-1.8 times the default. Returns keyword arguments of
    :func:`generate_case`.
    """
    matrix = int(rng.choice((128, 256)))
    fov = float(rng.uniform(220.0, 256.0))
    pixel = max(0.9, min(2.0, fov / matrix))
    nz = int(rng.integers(16, 31))
    dz = float(rng.uniform(4.0, 6.5))
    return {
        "shape": (nz, matrix, matrix),
        "spacing": (dz, pixel, pixel),
        "adc_unit": str(rng.choice(sorted(ADC_UNITS))),
        "intensity_scale": float(10.0 ** rng.uniform(-2.0, 2.0)),
        "noise_scale": float(rng.uniform(0.6, 1.8)),
    }


# Fazekas-like white-matter-hyperintensity burden (number of FLAIR foci) per etiology:
# small-vessel disease goes with lacunes and, less so, with atherosclerosis; dissection
# ("other") patients are younger.
_WMH_RANGE: dict[str, tuple[int, int]] = {
    "lacunar": (6, 16),
    "atherothrombotic": (3, 10),
    "cardioembolic": (2, 9),
    "cryptogenic": (0, 6),
    "other": (0, 4),
}


@dataclass
class PhantomCase:
    """One synthetic case: co-registered DWI / ADC / FLAIR volumes and a label mask.

    Attributes:
        code: pseudonymous case code (e.g. ``PH-0001``).
        etiology: etiology name (a key of the label mapping).
        seed: the seed that regenerates this case exactly.
        shape: (nz, ny, nx) of every array.
        spacing: (dz, dy, dx) voxel size in mm.
        affine: 4x4 RAS affine of the NIfTI (x, y, z)-ordered array, i.e. of
            ``array.transpose(2, 1, 0)`` (nibabel convention).
        images: kind (``DWI``, ``ADC``, ``FLAIR``) -> float32 (z, y, x) volume. DWI and FLAIR
            are in arbitrary scanner units, ADC in 1e-6 mm^2/s (or ``meta['adc_unit']``).
        mask: uint8 (z, y, x); ``label_value`` on lesion voxels, 0 elsewhere.
        label_value: the mask value of this case's etiology.
        lesions: one dict per lesion: ``centre`` (k, j, i index), ``centre_ras_mm``,
            ``radius_mm`` (equivalent-sphere radius), ``location``, ``territory``,
            ``hemisphere``, ``n_voxels``, ``volume_ml``, ``n_slices``, ``extent_mm`` (z, y, x).
        meta: generation details (anatomy source, pose, intensity scales, WMH count).
        workup: a plausible diagnostic work-up (:mod:`cases.phantoms.workup`).
        hidden_mechanism: for some cryptogenic cases, the mechanism the work-up missed
            (``"cardioembolic"``: an embolic lesion pattern with undetected AF).
    """

    code: str
    etiology: str
    seed: int
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine: np.ndarray
    images: dict[str, np.ndarray]
    mask: np.ndarray
    label_value: int
    lesions: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    workup: dict[str, Any] = field(default_factory=dict)
    hidden_mechanism: str | None = None

    @property
    def lesion_volume_ml(self) -> float:
        """Total lesion volume in millilitres."""
        return float(np.count_nonzero(self.mask)) * float(np.prod(self.spacing)) / 1000.0


def _streams(seed: int) -> dict[str, np.random.Generator]:
    # Independent streams: changing e.g. the noise model does not move the lesions.
    names = ("pose", "lesions", "wmh", "contrast", "noise", "workup")
    children = np.random.SeedSequence(int(seed)).spawn(len(names))
    return {n: np.random.default_rng(c) for n, c in zip(names, children, strict=True)}


def _random_pose(rng: np.random.Generator) -> Pose:
    # Head positioning varies by a few degrees of yaw and a few mm; head size by ~ +-6 %.
    return Pose(
        yaw_deg=float(rng.uniform(-7.0, 7.0)),
        scale=float(rng.uniform(0.94, 1.06)),
        shift_mm=(
            float(rng.uniform(-6.0, 6.0)),
            float(rng.uniform(-6.0, 6.0)),
            float(rng.uniform(-4.0, 4.0)),
        ),
    )


def _bias_field(rng: np.random.Generator, shape: tuple[int, int, int], amp: float) -> np.ndarray:
    """Smooth multiplicative coil-sensitivity field, separable + one in-plane cross term."""
    z = np.linspace(-1, 1, shape[0], dtype=np.float32)
    y = np.linspace(-1, 1, shape[1], dtype=np.float32)
    x = np.linspace(-1, 1, shape[2], dtype=np.float32)

    def poly(t: np.ndarray) -> np.ndarray:
        a, b = rng.uniform(-1, 1, 2)
        return np.asarray(a * t + b * (t * t - 1.0 / 3.0), dtype=np.float32)

    log_f = (
        0.5 * poly(z)[:, None, None]
        + poly(y)[None, :, None]
        + poly(x)[None, None, :]
        + float(rng.uniform(-0.5, 0.5)) * (y[:, None] * x[None, :])[None, :, :]
    )
    return np.asarray(np.exp(np.float32(amp) * log_f / 2.0), dtype=np.float32)


def _rician(
    rng: np.random.Generator, clean: np.ndarray, sigma: float, scratch: np.ndarray
) -> np.ndarray:
    """Magnitude of a complex signal with Gaussian noise in both channels (Rician)."""
    rng.standard_normal(dtype=np.float32, out=scratch)
    real = clean + np.float32(sigma) * scratch
    rng.standard_normal(dtype=np.float32, out=scratch)
    scratch *= np.float32(sigma)
    np.square(real, out=real)
    real += np.square(scratch, out=scratch)
    return np.sqrt(real, out=real)


def _paint(target: np.ndarray, lesion: DrawnLesion, weight: np.ndarray | float, grid: Grid) -> None:
    """Max-paint a softened lesion into ``target`` (partial volume at the border)."""
    sigma = (0.0, 0.6 / grid.spacing[1], 0.6 / grid.spacing[2])
    soft = ndi.gaussian_filter(lesion.mask.astype(np.float32), sigma=sigma)
    soft = np.maximum(soft, 0.85 * lesion.mask) * weight
    np.maximum(target[lesion.slices], soft.astype(np.float32), out=target[lesion.slices])


def generate_case(
    *,
    etiology: str,
    seed: int,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing: tuple[float, float, float] | None = None,
    label_values: Mapping[str, int] = DEFAULT_LABEL_VALUES,
    code: str | None = None,
    anatomy: str = "auto",
    adc_unit: str = "1e-6",
    intensity_scale: float = 1.0,
    noise_scale: float = 1.0,
    healthy: bool = False,
) -> PhantomCase:
    """Generate one phantom case deterministically from ``seed``.

    Args:
        etiology: one of :data:`cases.phantoms.lesions.ETIOLOGIES` (and a key of
            ``label_values``).
        seed: non-negative integer; the same seed (and arguments) gives identical arrays.
        shape: (nz, ny, nx); small shapes such as (8, 64, 64) are fine for tests.
        spacing: (dz, dy, dx) mm. ``None`` maps ``shape`` onto the standard 125 x 230.4 x
            230.4 mm field of view, i.e. (5.0, 0.9, 0.9) for the default (25, 256, 256).
        label_values: etiology name -> mask value (1..255).
        code: case code; defaults to ``PH-S<seed>``.
        anatomy: ``"auto"`` (MNI152 from nilearn if installed), ``"mni152"`` or
            ``"analytic"``.
        adc_unit: unit of the ADC map as a scanner would store it: ``"1e-6"`` (10^-6
            mm^2/s, the default: normal WM ~ 730), ``"1e-3"`` (normal WM ~ 0.73) or
            ``"mm2/s"`` (normal WM ~ 0.00073). Vendors and converters differ.
        intensity_scale: factor on the DWI and FLAIR scanner units (receiver gain and
            reconstruction scaling differ by vendor and protocol).
        noise_scale: factor on the noise level (1 = the default protocol's SNR).
        healthy: no acute lesion (an empty mask): the same head, white-matter
            hyperintensities and noise, for "no lesion found" checks.

    Returns:
        A :class:`PhantomCase`.
    """
    if adc_unit not in ADC_UNITS:
        raise ValueError(f"unknown ADC unit {adc_unit!r}; expected one of {sorted(ADC_UNITS)}")
    if not (intensity_scale > 0 and noise_scale >= 0):
        raise ValueError("intensity_scale must be > 0 and noise_scale >= 0")
    if etiology not in ETIOLOGIES:
        raise ValueError(f"unknown etiology {etiology!r}; expected one of {ETIOLOGIES}")
    if etiology not in label_values:
        raise ValueError(f"label_values has no value for etiology {etiology!r}")
    label_value = int(label_values[etiology])
    if not 1 <= label_value <= 255:
        raise ValueError("label values must be in 1..255")
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    spacing = spacing_for_shape(shape) if spacing is None else tuple(map(float, spacing))  # type: ignore[assignment]
    assert spacing is not None
    grid = Grid(shape, spacing)
    base = base_anatomy(shape, spacing, anatomy)
    rngs = _streams(seed)

    pose = _random_pose(rngs["pose"])
    t = pose_tissues(base, grid, pose)
    gm, wm, csf, scalp = t["gm"], t["wm"], t["csf"], t["scalp"]
    tissue = gm + wm

    # --- acute lesions ---------------------------------------------------------------
    rng_l = rngs["lesions"]
    rng_w0 = rngs["workup"]
    hidden = hidden_mechanism(etiology, rng_w0)
    specs: list[LesionSpec] = lesion_specs(hidden or etiology, rng_l)
    workup = phantom_workup(etiology, rng_w0)
    if healthy:
        specs = []
    drawn = draw_lesions(rng_l, specs, base, grid, pose, tissue)
    mask_bool = np.zeros(shape, dtype=bool)
    les = np.zeros(shape, dtype=np.float32)  # restriction strength x partial volume
    for d in drawn:
        mask_bool[d.slices] |= d.mask
        # Restriction varies between and within infarcts (core vs. periphery).
        severity = float(rng_l.uniform(0.8, 1.0))
        tex = ndi.gaussian_filter(rng_l.standard_normal(d.mask.shape), sigma=(0.0, 1.5, 1.5))
        tex = 1.0 - 0.15 * np.clip(tex / max(float(tex.std()), 1e-6), -2, 2) / 2
        _paint(les, d, severity * tex, grid)
    les *= np.clip(tissue, 0.0, 1.0)

    # --- chronic small-vessel disease (FLAIR white-matter hyperintensities) -----------
    rng_w = rngs["wmh"]
    lo, hi = _WMH_RANGE[etiology]
    n_wmh = int(rng_w.integers(lo, hi + 1))
    wmh = np.zeros(shape, dtype=np.float32)
    wmh_specs = [
        LesionSpec(
            "periventricular" if rng_w.random() < 0.5 else "deep_wm",
            "left" if rng_w.random() < 0.5 else "right",
            (float(rng_w.uniform(3.0, 6.0)), *(float(rng_w.uniform(1.5, 5.0)),) * 2),
            0.3,
            "wmh",
            "",
        )
        for _ in range(n_wmh)
    ]
    if wmh_specs:
        for d in draw_lesions(rng_w, wmh_specs, base, grid, pose, tissue, max_tries=5):
            _paint(wmh, d, float(rng_w.uniform(0.6, 1.0)), grid)
    wmh *= np.clip(wm, 0.0, 1.0)

    # --- tissue parameters with per-case variation ------------------------------------
    rc = rngs["contrast"]

    def jit(v: float, rel: float = 0.05) -> float:
        return v * float(rc.uniform(1.0 - rel, 1.0 + rel))

    adc = {"gm": jit(850.0), "wm": jit(730.0), "csf": jit(3000.0, 0.03), "scalp": jit(1100.0)}
    s0 = {"gm": jit(1.0), "wm": jit(0.82), "csf": jit(2.2), "scalp": jit(0.45)}
    fl = {"gm": jit(1.0), "wm": jit(0.72), "csf": jit(0.1, 0.3), "scalp": jit(1.3)}
    t2_gain = float(rc.uniform(0.15, 0.5))  # T2 prolongation grows with time since onset
    flair_gain = float(rc.uniform(0.15, 0.6))  # FLAIR-DWI mismatch in hyperacute cases
    restr = float(rc.uniform(0.5, 0.62))  # ADC drop: ~ 50-60 % in the core
    dwi_scale = float(rc.uniform(350.0, 700.0))
    flair_scale = float(rc.uniform(250.0, 600.0))
    bias_amp = float(rc.uniform(0.1, 0.3))

    f32 = np.float32
    # Parenchyma: GM and WM modified by acute lesions (ADC down, T2 up) and WMH (ADC up).
    adc_mod = 1.0 - f32(restr) * les + f32(0.35) * wmh
    s0_mod = 1.0 + f32(t2_gain) * les + f32(0.3) * wmh
    e = np.exp(adc_mod * f32(-B_VALUE * 1e-6))  # per-unit-ADC decay, shared by GM/WM
    s0_gm = gm * f32(s0["gm"])
    s0_wm = wm * f32(s0["wm"])
    s0_par = (s0_gm + s0_wm) * s0_mod
    # exp(-b*ADC_t*mod) = e ** ADC_t; computing via e ** a keeps one exp per tissue cheap.
    dwi_par = (s0_gm * e ** f32(adc["gm"]) + s0_wm * e ** f32(adc["wm"])) * s0_mod
    s0_oth = csf * f32(s0["csf"]) + scalp * f32(s0["scalp"])
    dwi_oth = csf * f32(s0["csf"] * math.exp(-B_VALUE * 1e-6 * adc["csf"])) + scalp * f32(
        s0["scalp"] * math.exp(-B_VALUE * 1e-6 * adc["scalp"])
    )
    s0_clean = s0_par + s0_oth
    dwi_clean = dwi_par + dwi_oth
    flair_par = (gm * f32(fl["gm"]) + wm * f32(fl["wm"])) * (
        1.0 + f32(flair_gain) * les + f32(1.1) * wmh
    )
    flair_clean = flair_par + csf * f32(fl["csf"]) + scalp * f32(fl["scalp"])

    # ADC from the noise-free pair, then the noise propagated from both b-values (the
    # trace averages 3 directions). Background is masked to 0 as on scanner ADC maps.
    rn = rngs["noise"]
    sigma_rel = float(rn.uniform(0.018, 0.03)) * noise_scale  # relative to b0 WM signal
    head = s0_clean > f32(0.15)
    safe_s0 = np.where(head, s0_clean, f32(1.0))
    safe_dwi = np.maximum(dwi_clean, f32(1e-4))
    adc_clean = np.log(safe_s0 / safe_dwi) * f32(1e6 / B_VALUE)
    sigma_adc = f32(1e6 / B_VALUE * sigma_rel / math.sqrt(3.0)) * np.sqrt(
        1.0 / safe_dwi**2 + 1.0 / safe_s0**2
    )
    np.minimum(sigma_adc, f32(1500.0), out=sigma_adc)
    scratch = np.empty(shape, dtype=np.float32)
    rn.standard_normal(dtype=np.float32, out=scratch)
    adc_img = adc_clean + sigma_adc * scratch
    np.clip(adc_img, 0.0, 4000.0, out=adc_img)
    adc_img[~head] = 0.0

    bias_d = _bias_field(rn, shape, bias_amp)
    bias_f = _bias_field(rn, shape, bias_amp)
    dwi_img = _rician(rn, dwi_clean * bias_d, sigma_rel, scratch)
    dwi_img *= f32(dwi_scale * intensity_scale)
    flair_img = _rician(rn, flair_clean * bias_f, sigma_rel * 0.7, scratch)
    flair_img *= f32(flair_scale * intensity_scale)
    adc_img *= f32(ADC_UNITS[adc_unit])

    mask = mask_bool.astype(np.uint8) * np.uint8(label_value)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    lesions = []
    for d in drawn:
        n = int(d.mask.sum())
        zz, yy, xx = np.nonzero(d.mask)
        extent = [
            float((a.max() - a.min() + 1) * s) for a, s in zip((zz, yy, xx), spacing, strict=True)
        ]
        vol_mm3 = n * float(np.prod(spacing))
        info = dict(d.info)
        info.update(
            centre=info.pop("centre_index"),
            radius_mm=float((3.0 * vol_mm3 / (4.0 * math.pi)) ** (1.0 / 3.0)),
            n_voxels=n,
            volume_ml=n * voxel_ml,
            extent_mm=extent,
        )
        lesions.append(info)

    return PhantomCase(
        code=code or f"PH-S{seed}",
        etiology=etiology,
        seed=int(seed),
        shape=shape,
        spacing=spacing,
        affine=grid.affine_nifti(),
        images={
            "DWI": dwi_img.astype(np.float32, copy=False),
            "ADC": adc_img.astype(np.float32, copy=False),
            "FLAIR": flair_img.astype(np.float32, copy=False),
        },
        mask=mask,
        label_value=label_value,
        lesions=lesions,
        meta={
            "anatomy": base.source,
            "pose": {"yaw_deg": pose.yaw_deg, "scale": pose.scale, "shift_mm": pose.shift_mm},
            "dwi_scale": dwi_scale,
            "flair_scale": flair_scale,
            "noise_sigma_rel": sigma_rel,
            "n_wmh": n_wmh,
            "b_value": B_VALUE,
            "adc_unit": adc_unit,
            "intensity_scale": intensity_scale,
            "noise_scale": noise_scale,
        },
        workup=workup,
        hidden_mechanism=hidden,
    )
