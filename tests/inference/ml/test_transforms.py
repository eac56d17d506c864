"""Normalisation, channel stacking, geometry and augmentation (inference.ml.transforms)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inference.ml.networks import (
    ModelSpec,
)
from inference.ml.transforms import (
    AugmentConfig,
    augment_batch,
    fit_images,
    foreground_mask,
    normalize_intensity,
    plan_geometry,
    restore_geometry,
    stack_channels,
)

from .helpers import tiny_spec


def test_normalisation_is_robust_zscore_of_the_foreground() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((4, 32, 32), dtype=np.float32)
    image[:, 8:24, 8:24] = rng.normal(100, 10, (4, 16, 16))
    image[0, 10, 10] = 1e6  # one hot voxel must not set the scale
    fg = foreground_mask(image)
    assert fg[:, 8:24, 8:24].mean() > 0.99 and not fg[:, :4].any()
    out = normalize_intensity(image)
    inside = out[:, 8:24, 8:24]
    assert abs(float(inside.mean())) < 0.05
    assert 0.9 < float(inside.std()) < 1.1
    assert float(out.max()) < 5  # the outlier was clipped to the upper percentile
    # Air is clamped to the darkest foreground value: below all tissue, not -inf-like.
    assert np.all(out[:, :4] == out.min()) and float(out.min()) < -2
    assert np.all(normalize_intensity(np.full((2, 4, 4), 7.0)) == 0)
    nan_image = image.copy()
    nan_image[1, 1, 1] = np.nan
    assert np.isfinite(normalize_intensity(nan_image)).all()


def test_stack_channels_missing_series_context_and_flags() -> None:
    dwi = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    flair = np.ones((3, 4, 4), dtype=np.float32)
    out = stack_channels({"DWI": dwi, "FLAIR": flair}, context_slices=1, normalisation=None)
    assert out.shape == (3, 3 * 3 + 3, 4, 4)
    # DWI context channels: z-1, z, z+1 with edge replication.
    assert np.array_equal(out[0, 0], dwi[0]) and np.array_equal(out[0, 2], dwi[1])
    assert np.array_equal(out[2, 2], dwi[2]) and np.array_equal(out[1, 0], dwi[0])
    assert np.all(out[:, 3:6] == 0)  # ADC missing -> zeros
    assert np.all(out[:, 9] == 1) and np.all(out[:, 10] == 0) and np.all(out[:, 11] == 1)
    no_flags = stack_channels({"DWI": dwi}, presence_flags=False)
    assert no_flags.shape == (3, 3, 4, 4)
    with pytest.raises(ValueError, match="none of the series"):
        stack_channels({"CT": dwi})
    with pytest.raises(ValueError, match="same grid"):
        stack_channels({"DWI": dwi, "ADC": np.zeros((3, 4, 5), np.float32)})


def test_projection_channels_carry_the_whole_volume_on_every_slice() -> None:
    dwi = np.zeros((4, 5, 5), dtype=np.float32)
    dwi[0, 1, 1] = 3.0  # a lesion on the first slice...
    dwi[3, 4, 2] = 2.0  # ...and another on the last
    adc = np.ones((4, 5, 5), dtype=np.float32)
    out = stack_channels(
        {"DWI": dwi, "ADC": adc},
        ("DWI", "ADC"),
        projection_kinds=("DWI",),
        normalisation=None,
    )
    # Channels: DWI slice, ADC slice, DWI projection, two presence flags.
    assert out.shape == (4, 5, 5, 5)
    for z in range(4):
        assert out[z, 2, 1, 1] == 3.0 and out[z, 2, 4, 2] == 2.0
        assert np.array_equal(out[z, 0], dwi[z])
    assert np.all(out[:, 3:] == 1)
    spec = tiny_spec(context_slices=1, projection_kinds=("DWI",))
    assert spec.in_channels == 3 * 3 + 1 + 3 and spec.intensity_channels == 10
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # Models stored before projections existed load with none.
    legacy = spec.to_dict()
    del legacy["projection_kinds"], legacy["in_channels"]
    assert ModelSpec.from_dict(legacy).projection_kinds == ()
    with pytest.raises(ValueError, match="projection_kinds"):
        tiny_spec(channel_kinds=("ADC",), projection_kinds=("DWI",))
    with pytest.raises(ValueError, match="projection kinds"):
        stack_channels({"DWI": dwi}, ("DWI",), projection_kinds=("FLAIR",))


def test_geometry_pad_and_resize_roundtrip() -> None:
    x = torch.randn(2, 3, 50, 70)
    geo = plan_geometry((50, 70), multiple=32)
    assert geo.fitted == (64, 96)
    fitted = fit_images(x, geo)
    assert fitted.shape[-2:] == (64, 96)
    assert torch.equal(restore_geometry(fitted, geo), x)
    geo_r = plan_geometry((50, 70), multiple=32, image_size=(64, 64))
    assert restore_geometry(fit_images(x, geo_r), geo_r).shape == x.shape


def _label_image(n: int = 4, size: int = 64) -> torch.Tensor:
    y = torch.zeros(n, size, size, dtype=torch.long)
    y[:, 10:30, 12:40] = 1
    y[:, 35:55, 20:34] = 2
    y[:, 40:48, 45:60] = 3
    return y


def test_augmentation_keeps_image_and_mask_aligned() -> None:
    cfg = AugmentConfig(
        flip_lr=0.5,
        flip_ud=0.5,
        affine=1.0,
        perspective=1.0,
        grid_distortion=1.0,
        elastic=1.0,
        gamma=0.0,
        contrast=0.0,
        brightness=0.0,
        noise=0.0,
    )
    y = _label_image()
    x = y[:, None].float()  # the image IS the mask
    gen = torch.Generator().manual_seed(3)
    xa, ya = augment_batch(x, y, cfg, generator=gen)
    assert not torch.equal(ya, y)  # something moved
    img = xa[:, 0]
    interior = (img - img.round()).abs() < 1e-4  # not on a bilinear-blended edge
    assert interior.float().mean() > 0.9
    assert torch.equal(img.round().long()[interior], ya[interior])
    # Every label survives and almost all pixels agree, edges included.
    assert set(ya.unique().tolist()) == {0, 1, 2, 3}
    assert (img.round().long() == ya).float().mean() > 0.97
    # Same seed, same result; another seed, another result.
    xb, yb = augment_batch(x, y, cfg, generator=torch.Generator().manual_seed(3))
    assert torch.equal(xb, xa) and torch.equal(yb, ya)
    _, yc = augment_batch(x, y, cfg, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(yc, ya)


def test_flip_is_exact_and_intensity_spares_flag_channels() -> None:
    y = _label_image(2, 32)
    x = torch.randn(2, 4, 32, 32)
    x[:, 3] = 1.0  # presence flag channel
    off = dict.fromkeys(("affine", "perspective", "grid_distortion", "elastic"), 0.0)
    flip = AugmentConfig(flip_lr=1.0, gamma=0, contrast=0, brightness=0, noise=0, **off)
    xf, yf = augment_batch(x, y, flip, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(xf, x.flip(-1), atol=1e-5) and torch.equal(yf, y.flip(-1))
    intensity = AugmentConfig(flip_lr=0, gamma=1, contrast=1, brightness=1, noise=1, **off)
    xi, yi = augment_batch(x, y, intensity, generator=torch.Generator(), image_channels=3)
    assert torch.equal(yi, y) and not torch.allclose(xi[:, :3], x[:, :3])
    assert torch.allclose(xi[:, 3], x[:, 3])


# --------------------------------------------------------------------------- data
