"""Intensity normalisation, channel assembly, network geometry and batched torch augmentation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from inference.ml.brain import brain_mask, core_prior
from inference.ml.networks import DEFAULT_KINDS, ModelSpec, NormalisationSpec

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]

# Robust statistics on more voxels than this are computed on a regular strided subsample:
# percentiles of ~260 k evenly spread voxels match those of a 1.6 M-voxel series to well
# under 1 % of the range and cost a fraction of the time.
_MAX_STAT_VOXELS = 1 << 18


# --------------------------------------------------------------------------- normalisation


def _stat_sample(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    flat = values.reshape(-1)
    step = max(1, flat.size // _MAX_STAT_VOXELS)
    return flat[::step]


def foreground_mask(image: npt.NDArray[Any], *, fraction: float = 0.1) -> BoolArray:
    """Estimate the head/brain foreground of one series by a relative intensity threshold.

    MRI background (air) is close to the series minimum while tissue is well above it, so a
    voxel is foreground when ``> min + fraction * (p99 - min)``. Using p99 rather than the
    maximum keeps a few hot voxels (DWI lesions, vessels) from raising the threshold.

    Args:
        image: one series (any shape), finite values.
        fraction: relative threshold in ``[0, 1)``.

    Returns:
        Boolean mask of the same shape; all ``True`` when no usable threshold exists
        (constant image) or when the threshold leaves under 1 % of the voxels.
    """
    sample = _stat_sample(image)
    lo = float(sample.min())
    hi = float(np.percentile(sample, 99.0))
    if not hi > lo:
        return np.ones(image.shape, dtype=bool)
    mask = np.asarray(image > lo + fraction * (hi - lo))
    if int(mask.sum()) < 0.01 * mask.size:
        return np.ones(image.shape, dtype=bool)
    return mask


def normalize_intensity(
    image: npt.NDArray[Any],
    *,
    mask: BoolArray | None = None,
    spec: NormalisationSpec | None = None,
) -> FloatArray:
    """Robust z-score of one series.

    Intensities are clipped to the ``[lower_pct, upper_pct]`` percentiles measured inside
    the foreground (so the air around the head neither sets the scale nor the centre), then
    shifted/scaled by the mean and std of the clipped foreground. MRI intensities have no
    absolute unit (scanner gain, bias field), hence a per-series normalisation.

    Args:
        image: one series, any shape; NaN/inf are replaced by the finite minimum.
        mask: foreground mask; estimated with :func:`foreground_mask` when ``None``.
        spec: percentiles and foreground threshold; defaults to :class:`NormalisationSpec`.

    Returns:
        float32 array of the same shape (foreground mean 0, std 1 before clipping effects);
        zeros for a constant image.
    """
    spec = spec or NormalisationSpec()
    data = np.asarray(image, dtype=np.float32)
    if not np.isfinite(data).all():
        finite = data[np.isfinite(data)]
        fill = float(finite.min()) if finite.size else 0.0
        data = np.nan_to_num(data, nan=fill, posinf=fill, neginf=fill)
    sample = _stat_sample(data)
    if mask is None:
        # The threshold only needs the subsample, so the mask is built on it too.
        fg = foreground_mask(sample, fraction=spec.foreground_fraction)
    else:
        fg = _stat_sample(np.broadcast_to(mask, data.shape))
    values = sample[fg] if fg.any() else sample
    lo, hi = np.percentile(values, [spec.lower_pct, spec.upper_pct])
    clipped_values = np.clip(values, lo, hi)
    mean = float(clipped_values.mean())
    std = float(clipped_values.std())
    out = np.clip(data, lo, hi)
    out -= mean
    if std > 1e-6:
        out /= std
    else:
        out[...] = 0.0
    return out.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- channel assembly


def missing_kinds(
    volumes: Mapping[str, npt.NDArray[Any] | None], kinds: Iterable[str] = DEFAULT_KINDS
) -> list[str]:
    """Kinds from ``kinds`` that are absent (or ``None``) in ``volumes``."""
    return [k for k in kinds if volumes.get(k) is None]


def stack_channels(
    volumes: Mapping[str, npt.NDArray[Any] | None],
    kinds: Iterable[str] = DEFAULT_KINDS,
    *,
    context_slices: int = 0,
    projection_kinds: Iterable[str] = (),
    presence_flags: bool = True,
    normalisation: NormalisationSpec | None = NormalisationSpec(),  # noqa: B008 - frozen
    prior_channels: Iterable[str] = (),
    brain: BoolArray | None = None,
    normalise_in_brain: bool = True,
) -> FloatArray:
    """Assemble co-registered series into per-slice network channels.

    Channel order: for each kind, slices ``z - context_slices .. z + context_slices``
    (edges repeat the first/last slice), then for each of ``projection_kinds`` the
    maximum-intensity projection of the normalised volume along z (the same plane on every
    slice: global context), then the physics priors of ``prior_channels`` (``"adc_core"``:
    :func:`inference.ml.brain.core_prior`, zeros without ADC), then one presence flag per
    kind when ``presence_flags``. A
    missing kind becomes zeros (after normalisation zero is the foreground mean, i.e. "no
    information"; its projection too) and its flag is 0, so a study without ADC or FLAIR
    still runs and the network can tell that the channel is empty.

    Args:
        volumes: ``{kind: (z, y, x) array}``; extra kinds (e.g. ``"CT"``) are ignored.
        kinds: kinds to use, in channel order.
        context_slices: neighbouring slices per side (2.5D); 0 means plain 2D.
        projection_kinds: kinds (among ``kinds``) whose z projection is appended.
        presence_flags: append presence channels.
        normalisation: per-series normalisation, or ``None`` to keep raw intensities.
        prior_channels: physics priors to append.
        brain: brain mask of the study; priors are zero outside it and, with
            ``normalise_in_brain``, every series is normalised inside it (instead of its
            own intensity threshold).
        normalise_in_brain: use ``brain`` for the normalisation statistics.

    Returns:
        float32 array ``(z, C, y, x)`` with ``C = len(kinds) * (2 * context + 1)
        + len(projection_kinds) + len(prior_channels) (+ len(kinds))``.

    Raises:
        ValueError: no requested kind is present, shapes differ, a volume is not 3-D, or a
            projection kind is not among ``kinds``.
    """
    kinds = tuple(kinds)
    projections = tuple(projection_kinds)
    if not set(projections) <= set(kinds):
        raise ValueError(f"projection kinds {list(projections)} must be among {list(kinds)}")
    present: dict[str, npt.NDArray[Any]] = {}
    for kind in kinds:
        volume = volumes.get(kind)
        if volume is not None:
            present[kind] = volume
    if not present:
        raise ValueError(f"none of the series {list(kinds)} is present")
    shapes = {np.shape(v) for v in present.values()}
    if len(shapes) != 1:
        raise ValueError(f"series are not on the same grid: shapes {sorted(shapes)}")
    shape = shapes.pop()
    if len(shape) != 3:
        raise ValueError(f"volumes must be (z, y, x); got shape {shape}")
    nz, ny, nx = shape
    priors = tuple(prior_channels)
    if brain is not None and tuple(brain.shape) != tuple(shape):
        raise ValueError(f"brain mask shape {brain.shape} differs from the series {shape}")
    per_kind = 2 * context_slices + 1
    first_prior = len(kinds) * per_kind + len(projections)
    first_flag = first_prior + len(priors)
    n_channels = first_flag + (len(kinds) if presence_flags else 0)
    out = np.zeros((nz, n_channels, ny, nx), dtype=np.float32)
    for k_index, kind in enumerate(kinds):
        raw = present.get(kind)
        if raw is None:
            continue
        vol = (
            normalize_intensity(raw, mask=brain if normalise_in_brain else None, spec=normalisation)
            if normalisation is not None
            else np.asarray(raw, dtype=np.float32)
        )
        for j, offset in enumerate(range(-context_slices, context_slices + 1)):
            source = np.clip(np.arange(nz) + offset, 0, nz - 1)
            out[:, k_index * per_kind + j] = vol[source]
        if kind in projections:
            out[:, len(kinds) * per_kind + projections.index(kind)] = vol.max(axis=0)
        if presence_flags:
            out[:, first_flag + k_index] = 1.0
    for p_index, prior in enumerate(priors):
        if prior == "adc_core" and present.get("ADC") is not None:
            out[:, first_prior + p_index] = core_prior(present["ADC"], brain)
        elif prior != "adc_core":
            raise ValueError(f"unknown prior channel {prior!r}")
    return out


def brain_for_spec(
    volumes: Mapping[str, npt.NDArray[Any] | None], spec: ModelSpec
) -> BoolArray | None:
    """The study's brain mask when ``spec`` uses one (brain masking or priors), else None."""
    if not (spec.brain_masking or spec.prior_channels):
        return None
    return brain_mask({k: volumes.get(k) for k in spec.channel_kinds})


def stack_for_spec(
    volumes: Mapping[str, npt.NDArray[Any] | None],
    spec: ModelSpec,
    *,
    brain: BoolArray | None = None,
) -> FloatArray:
    """:func:`stack_channels` with the kinds, context, flags, priors and normalisation of
    ``spec`` (the brain mask is computed when the spec needs one and none is given)."""
    if brain is None:
        brain = brain_for_spec(volumes, spec)
    if brain is not None and not brain.any():
        brain = None  # a blank study: fall back to the per-series threshold
    return stack_channels(
        volumes,
        spec.channel_kinds,
        context_slices=spec.context_slices,
        projection_kinds=spec.projection_kinds,
        presence_flags=spec.presence_flags,
        normalisation=spec.normalisation,
        prior_channels=spec.prior_channels,
        brain=brain,
        normalise_in_brain=spec.brain_masking,
    )


# --------------------------------------------------------------------------- network geometry


@dataclass(frozen=True)
class Geometry:
    """How slices were fitted to the network, to undo it on the output.

    Attributes:
        original: ``(H, W)`` before fitting.
        fitted: ``(H, W)`` fed to the network.
        pad: ``(top, bottom, left, right)`` padding (pad mode) or zeros (resize mode).
        resized: True when slices were resampled to ``fitted`` instead of padded.
        inner: ``(H, W)`` the slices are resampled to BEFORE padding (a fixed pixel size in
            mm, see ``ModelSpec.target_spacing``), or ``None``.
    """

    original: tuple[int, int]
    fitted: tuple[int, int]
    pad: tuple[int, int, int, int]
    resized: bool
    inner: tuple[int, int] | None = None


def resampled_size(
    size: tuple[int, int], spacing: tuple[float, float], target_spacing: float
) -> tuple[int, int]:
    """``(H, W)`` of a slice of ``size`` pixels of ``spacing`` mm resampled to
    ``target_spacing`` mm pixels (the same field of view, at least 8 pixels a side)."""
    return (
        max(8, round(size[0] * float(spacing[0]) / target_spacing)),
        max(8, round(size[1] * float(spacing[1]) / target_spacing)),
    )


def _padding(inner: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    (h, w), (th, tw) = inner, target
    top, left = (th - h) // 2, (tw - w) // 2
    return (top, th - h - top, left, tw - w - left)


def plan_geometry(
    size: tuple[int, int],
    *,
    multiple: int,
    image_size: tuple[int, int] | None = None,
    spacing: tuple[float, float] | None = None,
    target_spacing: float | None = None,
) -> Geometry:
    """Plan how one case's slices are fitted to the network.

    ``image_size``: resize to it. ``target_spacing`` (with the slices' in-plane
    ``spacing``): resample to that pixel size, then pad to the next multiple. Otherwise:
    pad to the next multiple.
    """
    h, w = size
    if image_size is not None:
        return Geometry((h, w), (image_size[0], image_size[1]), (0, 0, 0, 0), True)
    inner = None
    if target_spacing is not None and spacing is not None:
        inner = resampled_size((h, w), spacing, target_spacing)
        h, w = inner
    ph = -(-h // multiple) * multiple
    pw = -(-w // multiple) * multiple
    return Geometry(size, (ph, pw), _padding((h, w), (ph, pw)), False, inner)


def _resample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    # Antialiasing when shrinking: a 0.5 mm matrix brought to 1.5 mm pixels must average,
    # not skip, its pixels (else noise and thin lesions alias).
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def fit_images(x: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Pad (edge-replicate: the border is background) or resize (bilinear) ``(N, C, H, W)``."""
    if geometry.resized:
        if tuple(x.shape[-2:]) == geometry.fitted:
            return x
        return F.interpolate(x, size=geometry.fitted, mode="bilinear", align_corners=False)
    if geometry.inner is not None:
        x = _resample(x, geometry.inner)
    top, bottom, left, right = geometry.pad
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom), mode="replicate")


def fit_masks(y: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Pad with background or nearest-resize an integer mask batch ``(N, H, W)``."""
    size = geometry.fitted if geometry.resized else geometry.inner
    if size is not None and tuple(y.shape[-2:]) != tuple(size):
        resized = F.interpolate(y[:, None].float(), size=size, mode="nearest-exact")
        y = resized[:, 0].to(y.dtype)
    if geometry.resized:
        return y
    top, bottom, left, right = geometry.pad
    return F.pad(y, (left, right, top, bottom), mode="constant", value=0)


def restore_geometry(out: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """Undo :func:`fit_images` on network output ``(N, K, H', W')`` (crop and/or bilinear)."""
    if geometry.resized:
        if tuple(out.shape[-2:]) == geometry.original:
            return out
        return F.interpolate(out, size=geometry.original, mode="bilinear", align_corners=False)
    top, _, left, _ = geometry.pad
    h, w = geometry.inner or geometry.original
    out = out[..., top : top + h, left : left + w]
    if (h, w) != tuple(geometry.original):
        out = F.interpolate(out, size=geometry.original, mode="bilinear", align_corners=False)
    return out


# --------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of the batched augmentations (probability 0 disables one).

    Geometric transforms are composed into ONE sampling grid per sample, so image and mask
    are resampled once and stay aligned (bilinear for the image, nearest for the mask).
    Distances are in normalised units (1.0 = half the longer image side).
    """

    enabled: bool = True
    # Left/right flips are safe: etiology patterns (territories, insula, border zones,
    # deep lacunes) occur on both hemispheres, so a mirrored brain is a plausible case of
    # the same etiology. Up/down flips are anatomically implausible and off by default.
    flip_lr: float = 0.5
    flip_ud: float = 0.0
    affine: float = 0.7
    rotate_deg: float = 15.0
    scale_min: float = 0.85
    scale_max: float = 1.15
    shift: float = 0.08
    perspective: float = 0.2
    perspective_strength: float = 0.08
    grid_distortion: float = 0.2
    grid_steps: int = 5
    grid_limit: float = 0.3
    elastic: float = 0.2
    elastic_alpha: float = 0.03
    elastic_grid: int = 8
    gamma: float = 0.3
    gamma_min: float = 0.7
    gamma_max: float = 1.5
    contrast: float = 0.3
    contrast_min: float = 0.75
    contrast_max: float = 1.25
    brightness: float = 0.3
    brightness_limit: float = 0.15
    noise: float = 0.2
    noise_std: float = 0.08

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentConfig:
        """Build from :meth:`to_dict` output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def geometric(self) -> bool:
        """True when at least one geometric transform can fire."""
        return self.enabled and any(
            p > 0
            for p in (
                self.flip_lr,
                self.flip_ud,
                self.affine,
                self.perspective,
                self.grid_distortion,
                self.elastic,
            )
        )

    @property
    def photometric(self) -> bool:
        """True when at least one intensity transform can fire."""
        return self.enabled and any(
            p > 0 for p in (self.gamma, self.contrast, self.brightness, self.noise)
        )


def _uniform(
    n: int | tuple[int, ...], lo: float, hi: float, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    size = (n,) if isinstance(n, int) else n
    return torch.rand(size, generator=g, device=device) * (hi - lo) + lo


def _fires(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    # Always draw, even for p == 0, so the random stream (and results) only depend on seed.
    return (torch.rand(n, generator=g, device=device) < p).float()


def sampling_grid(
    n: int,
    size: tuple[int, int],
    config: AugmentConfig,
    *,
    generator: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Random output->input sampling grids ``(n, H, W, 2)`` for :func:`F.grid_sample`.

    Composition (applied to output coordinates): perspective, affine (rotation, isotropic
    scale, shift), grid distortion, elastic displacement, then flips. Coordinates are made
    isotropic first so rotations do not shear non-square slices. Transforms with
    probability 0 are skipped entirely (a config-level decision, so results stay a pure
    function of the seed); per-sample firing is a 0/1 factor, never a Python branch.
    """
    h, w = size
    g = generator
    m = float(max(h, w))
    ax, ay = w / m, h / m  # normalised -> isotropic units
    xs = (torch.arange(w, device=device, dtype=torch.float32) * 2 + 1) / w - 1
    ys = (torch.arange(h, device=device, dtype=torch.float32) * 2 + 1) / h - 1
    qx = (xs * ax).expand(n, h, w)
    qy = (ys * ay)[:, None].expand(n, h, w)

    if config.perspective > 0:
        # Projective terms only; |h| small keeps the denominator near 1.
        on = _fires(n, config.perspective, g, device)
        s = config.perspective_strength
        h1 = (_uniform(n, -s, s, g, device) * on)[:, None, None]
        h2 = (_uniform(n, -s, s, g, device) * on)[:, None, None]
        inv = 1.0 / (1.0 + h1 * qx + h2 * qy)
        qx, qy = qx * inv, qy * inv

    if config.affine > 0:
        # Rotation + isotropic scale + shift; identity where it does not fire.
        on = _fires(n, config.affine, g, device)
        theta = torch.deg2rad(_uniform(n, -config.rotate_deg, config.rotate_deg, g, device)) * on
        scale = 1.0 + (_uniform(n, config.scale_min, config.scale_max, g, device) - 1.0) * on
        tx = (_uniform(n, -config.shift, config.shift, g, device) * on * 2)[:, None, None]
        ty = (_uniform(n, -config.shift, config.shift, g, device) * on * 2)[:, None, None]
        inv_s = 1.0 / scale  # output->input: zoom in = sample a smaller area
        a = (torch.cos(theta) * inv_s)[:, None, None]
        b = (torch.sin(theta) * inv_s)[:, None, None]
        qx, qy = a * qx - b * qy + tx, b * qx + a * qy + ty

    if config.grid_distortion > 0:
        # Piecewise-linear displacement per column (x) and per row (y); the slope stays
        # below ``grid_limit`` < 1 so the mapping is monotone (no folding).
        on = _fires(n, config.grid_distortion, g, device)[:, None]
        steps = max(1, config.grid_steps)
        amp = config.grid_limit / steps
        dx = _uniform((n, steps + 1), -amp, amp, g, device) * on
        dy = _uniform((n, steps + 1), -amp, amp, g, device) * on
        dx_full = F.interpolate(dx[:, None], size=w, mode="linear", align_corners=True)[:, 0]
        dy_full = F.interpolate(dy[:, None], size=h, mode="linear", align_corners=True)[:, 0]
        qx = qx + dx_full[:, None, :]
        qy = qy + dy_full[:, :, None]

    if config.elastic > 0:
        # A coarse random field upsampled bicubically is smooth (a cheap stand-in for a
        # Gaussian-filtered noise field) and runs as one kernel on the training device.
        on = _fires(n, config.elastic, g, device)[:, None, None, None]
        k = max(2, config.elastic_grid)
        field = _uniform((n, 2, k, k), -1.0, 1.0, g, device) * (config.elastic_alpha * on)
        field = F.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)
        qx = qx + field[:, 0]
        qy = qy + field[:, 1]

    fx = (1.0 - 2.0 * _fires(n, config.flip_lr, g, device)) / ax
    fy = (1.0 - 2.0 * _fires(n, config.flip_ud, g, device)) / ay
    return torch.stack((qx * fx[:, None, None], qy * fy[:, None, None]), dim=-1)


def augment_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    config: AugmentConfig,
    *,
    generator: torch.Generator,
    image_channels: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a batch on its own device: shared geometry for image and mask, then intensity.

    Args:
        x: images ``(N, C, H, W)`` float.
        y: integer masks ``(N, H, W)``.
        config: augmentation settings.
        generator: torch generator on ``x.device``; the same seed gives the same result.
        image_channels: leading channels that carry intensities; the rest (presence flags)
            are only resampled, never intensity-augmented. ``None`` = all channels.

    Returns:
        ``(x, y)`` augmented, same shapes and dtypes.
    """
    if not config.enabled:
        return x, y
    n, c, h, w = x.shape
    device = x.device
    g = generator
    if config.geometric:
        grid = sampling_grid(n, (h, w), config, generator=g, device=device).to(x.dtype)
        # "border" for images: the slice edge is background, so no artificial dark frame.
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        y_float = y[:, None].to(grid.dtype)
        y = F.grid_sample(y_float, grid, mode="nearest", padding_mode="zeros", align_corners=False)[
            :, 0
        ].to(y.dtype)
    if config.photometric:
        ci = c if image_channels is None else image_channels
        img = x[:, :ci]
        dims = (2, 3)
        if config.gamma > 0:
            # Gamma on the per-channel [min, max] range (z-scored data are not positive).
            on = _fires(n, config.gamma, g, device)
            gamma = 1.0 + (_uniform(n, config.gamma_min, config.gamma_max, g, device) - 1) * on
            lo = img.amin(dim=dims, keepdim=True)
            span = (img.amax(dim=dims, keepdim=True) - lo).clamp_min(1e-6)
            img = ((img - lo) / span).clamp_(0.0, 1.0).pow_(gamma[:, None, None, None])
            img = img.mul_(span).add_(lo)
        if config.contrast > 0 or config.brightness > 0:
            # (x - mean) * c + mean + b == x * c + (mean * (1 - c) + b): one fused pass.
            on = _fires(n, config.contrast, g, device)
            lo_c, hi_c = config.contrast_min, config.contrast_max
            factor = (1.0 + (_uniform(n, lo_c, hi_c, g, device) - 1) * on)[:, None, None, None]
            on = _fires(n, config.brightness, g, device)
            lim = config.brightness_limit
            shift = (_uniform(n, -lim, lim, g, device) * on)[:, None, None, None]
            mean = img.mean(dim=dims, keepdim=True)
            img = torch.addcmul(mean * (1 - factor) + shift, img, factor)
        if config.noise > 0:
            on = _fires(n, config.noise, g, device)
            noise = torch.randn(img.shape, generator=g, device=device, dtype=img.dtype)
            # Out of place: ``img`` may still be a view of the caller's tensor.
            img = img + noise.mul_((config.noise_std * on)[:, None, None, None])
        x = torch.cat((img, x[:, ci:]), dim=1) if ci < c else img
    return x, y
