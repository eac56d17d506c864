"""Brain mask, ADC units, the infarct-core prior and the fixed-pixel-size geometry."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from cases.phantoms import ADC_UNITS, generate_case
from inference.ml.brain import adc_micro, adc_unit, brain_mask, core_prior, head_mask
from inference.ml.data import CaseArrays, build_slice_dataset, common_geometry
from inference.ml.transforms import (
    fit_images,
    fit_masks,
    plan_geometry,
    resampled_size,
    restore_geometry,
    stack_for_spec,
)
from tests.inference.ml.helpers import tiny_spec

SHAPE = (10, 96, 96)


@pytest.fixture(scope="module")
def phantom():  # type: ignore[no-untyped-def]
    return generate_case(etiology="cardioembolic", seed=5, shape=SHAPE)


def test_brain_mask_holds_every_lesion_and_none_of_the_air(phantom) -> None:  # type: ignore[no-untyped-def]
    mask = brain_mask(phantom.images)
    assert mask is not None and mask.shape == SHAPE
    assert mask[phantom.mask > 0].all()
    assert 0.1 < mask.mean() < 0.6
    # The corners of every slice are air.
    assert not mask[:, :8, :8].any() and not mask[:, -8:, -8:].any()


def test_head_mask_on_a_real_scan_nobody_here_generated() -> None:
    """nibabel's example4d.nii.gz (a real EPI head, 128 x 96 x 24): head inside, air out."""
    path = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    volume = np.asarray(nib.load(path).dataobj, dtype=np.float32)[..., 0].transpose(2, 1, 0)
    for data in (volume, volume * 1e-3 + 50.0):  # any scanner scale and offset
        mask = head_mask(data)
        assert 0.2 < mask.mean() < 0.5
        assert mask[:, data.shape[1] // 2, data.shape[2] // 2].all()
        assert not mask[:, :3, :3].any() and not mask[:, -3:, -3:].any()


def test_noise_and_blank_volumes_have_no_head() -> None:
    rng = np.random.default_rng(0)
    assert not head_mask(np.abs(rng.normal(0, 100, (6, 64, 64)))).any()
    assert not head_mask(np.full((6, 64, 64), 7.0)).any()
    assert brain_mask({"FLAIR": rng.uniform(0, 1, (6, 64, 64))}) is not None


def test_normalisation_in_the_brain_mask_ignores_scanner_scale_and_offset(phantom) -> None:  # type: ignore[no-untyped-def]
    spec = tiny_spec(brain_masking=True, prior_channels=("adc_core",))
    base = stack_for_spec(phantom.images, spec)
    scaled = {
        "DWI": phantom.images["DWI"] * 37.0 + 120.0,
        "FLAIR": phantom.images["FLAIR"] * 0.013 + 5.0,
        "ADC": phantom.images["ADC"] * 1e-3,  # another unit, same tissue
    }
    other = stack_for_spec(scaled, spec)
    inside = brain_mask(phantom.images)
    assert inside is not None
    for channel in range(base.shape[1]):
        a, b = base[:, channel][inside], other[:, channel][inside]
        assert np.abs(a - b).max() < 1e-3 * max(1.0, float(np.abs(a).max())), channel


@pytest.mark.parametrize("unit", sorted(ADC_UNITS))
def test_adc_unit_is_read_off_the_values(unit: str) -> None:
    case = generate_case(etiology="lacunar", seed=3, shape=SHAPE, adc_unit=unit)
    mask = brain_mask(case.images)
    assert adc_unit(case.images["ADC"], mask) == unit
    reference = generate_case(etiology="lacunar", seed=3, shape=SHAPE)
    np.testing.assert_allclose(
        adc_micro(case.images["ADC"], mask), reference.images["ADC"], rtol=1e-4, atol=1e-3
    )


def test_core_prior_marks_the_infarct_not_the_healthy_brain(phantom) -> None:  # type: ignore[no-untyped-def]
    mask = brain_mask(phantom.images)
    prior = core_prior(phantom.images["ADC"], mask)
    lesion = phantom.mask > 0
    assert prior[lesion].mean() > 0.6
    assert prior[mask & ~lesion].mean() < 0.05
    assert not prior[~mask].any()


def test_target_spacing_makes_matrices_alike_and_round_trips() -> None:
    # 256 x 0.9 mm and 128 x 1.8 mm cover the same field of view: the same network input.
    assert resampled_size((256, 256), (0.9, 0.9), 1.5) == resampled_size(
        (128, 128), (1.8, 1.8), 1.5
    )
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 200), torch.linspace(-1, 1, 180), indexing="ij")
    smooth = torch.exp(-(yy**2 + xx**2) * 2)[None, None].repeat(1, 2, 1, 1)
    geometry = plan_geometry((200, 180), multiple=32, spacing=(0.8, 0.8), target_spacing=1.5)
    assert geometry.inner == (107, 96) and geometry.fitted == (128, 96)
    fitted = fit_images(smooth, geometry)
    assert fitted.shape[-2:] == geometry.fitted
    back = restore_geometry(fitted, geometry)
    assert back.shape == smooth.shape
    assert (back - smooth).abs().max() < 0.02
    labels = torch.zeros(1, 200, 180, dtype=torch.long)
    labels[0, 50:120, 40:100] = 2
    fitted_labels = fit_masks(labels, geometry)
    assert fitted_labels.shape[-2:] == geometry.fitted
    assert set(fitted_labels.unique().tolist()) == {0, 2}
    area_mm2 = float((fitted_labels == 2).sum()) * 1.5**2
    assert area_mm2 == pytest.approx(70 * 60 * 0.8**2, rel=0.05)


def test_training_slices_of_different_matrices_share_one_pixel_size() -> None:
    spec = tiny_spec(target_spacing=3.0, brain_masking=True, prior_channels=("adc_core",))
    small = generate_case(etiology="lacunar", seed=1, shape=(8, 64, 64))
    large = generate_case(etiology="lacunar", seed=2, shape=(12, 128, 128))
    cases = [
        CaseArrays(str(i), c.images, c.mask, c.spacing, c.label_value)
        for i, c in enumerate((small, large))
    ]
    dataset = build_slice_dataset(cases, spec, keep_all_slices=True)
    # Both cover 230.4 mm: 77 pixels of 3 mm, padded to the next multiple of 8 (3 stages).
    assert tuple(dataset.x.shape[-2:]) == (80, 80)
    geometries = common_geometry([(64, 64), (128, 128)], spec, [(3.6, 3.6), (1.8, 1.8)])
    assert geometries[0].inner == geometries[1].inner
