"""Lesion pattern on phantoms whose lesions are known; registration to MNI."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cases.phantoms import generate_case
from etiology.reasoning.atlas import atlas_available, load_atlas, region_territory
from etiology.reasoning.pattern import lesion_pattern
from etiology.reasoning.registration import register_to_mni
from inference.ml.brain import brain_mask

needs_atlas = pytest.mark.skipif(
    not atlas_available(), reason="the AAL atlas (Debian mricron-data) is not installed"
)
SHAPE = (25, 128, 128)


def _zyx(affine_xyz: np.ndarray) -> np.ndarray:
    out = np.array(affine_xyz, dtype=np.float64)
    out[:3, :3] = out[:3, [2, 1, 0]]
    return out


def _pattern(etiology: str, seed: int):  # type: ignore[no-untyped-def]
    ph = generate_case(etiology=etiology, seed=seed, shape=SHAPE)
    affine = _zyx(ph.affine)
    brain = brain_mask(ph.images)
    assert brain is not None
    registration = register_to_mni(brain, affine)
    return ph, lesion_pattern(
        ph.mask,
        spacing=ph.spacing,
        affine_zyx=affine,
        brain=brain,
        registration=registration,
        atlas=load_atlas(),
    )


def test_territory_names_of_aal_regions() -> None:
    assert region_territory("Insula_L") == "MCA"
    assert region_territory("Calcarine_R") == "PCA"
    assert region_territory("Cingulum_Ant_L") == "ACA"
    assert region_territory("Cerebelum_Crus1_R") == "VB"
    assert region_territory("Putamen_L") == "MCA"


@needs_atlas
def test_registration_recovers_a_known_rotation_and_shift() -> None:
    ph = generate_case(etiology="cardioembolic", seed=3, shape=SHAPE)
    affine = _zyx(ph.affine)
    brain = brain_mask(ph.images)
    assert brain is not None
    reference = register_to_mni(brain, affine)
    theta = np.deg2rad(12.0)
    moved = np.eye(4)
    moved[:2, :2] = [[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    moved[:3, 3] = [15.0, -10.0, 6.0]
    again = register_to_mni(brain, moved @ affine)
    assert reference.overlap > 0.9 and again.overlap > 0.9
    # The same voxels reach the same MNI points, however the head was moved.
    k, j, i = np.nonzero(ph.mask)
    idx = np.c_[k, j, i, np.ones(k.size)]
    a = reference.to_mni((idx @ affine.T)[:, :3])
    b = again.to_mni((idx @ (moved @ affine).T)[:, :3])
    assert np.linalg.norm(a - b, axis=1).mean() < 4.0


@needs_atlas
@pytest.mark.parametrize("seed", [1, 2, 5])
def test_pattern_matches_the_phantom_lesions(seed: int) -> None:
    for etiology in ("cardioembolic", "lacunar", "atherothrombotic"):
        ph, pattern = _pattern(etiology, seed)
        n_true = ndimage.label(ph.mask > 0, structure=np.ones((3, 3, 3)))[1]
        assert pattern.count == n_true
        assert pattern.volume_ml == pytest.approx(ph.lesion_volume_ml, rel=0.02)
        sides = {les["hemisphere"] for les in ph.lesions}
        assert set(pattern.sides) == sides
        assert pattern.bilateral == (sides == {"left", "right"})
        assert pattern.atlas and pattern.territories
        if any(les["location"] == "insular" for les in ph.lesions):
            assert pattern.insula
        if etiology == "lacunar":
            assert pattern.deep_small and not pattern.cortical and pattern.largest_diameter_mm < 15
        cortical_mca = [
            les for les in ph.lesions if les["location"] == "cortical" and les["territory"] == "MCA"
        ]
        if cortical_mca:
            assert "MCA" in pattern.territories


def test_pattern_without_an_atlas_leaves_territories_unknown() -> None:
    ph = generate_case(etiology="cardioembolic", seed=4, shape=(12, 64, 64))
    brain = brain_mask(ph.images)
    pattern = lesion_pattern(ph.mask, spacing=ph.spacing, affine_zyx=_zyx(ph.affine), brain=brain)
    assert pattern.count >= 1 and pattern.territories is None and pattern.insula is None
    assert not pattern.atlas
    empty = lesion_pattern(np.zeros((4, 8, 8), np.uint8), spacing=(1, 1, 1), affine_zyx=np.eye(4))
    assert empty.count == 0 and not empty.bilateral
