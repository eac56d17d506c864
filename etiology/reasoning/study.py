"""The lesion pattern of a label volume on a study: brain mask, registration to MNI and the
atlas, wired together (the one place the platform and the benchmarks compute it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from etiology.reasoning.atlas import atlas_available, load_atlas
from etiology.reasoning.pattern import LesionPattern, lesion_pattern
from etiology.reasoning.registration import Registration, register_to_mni
from inference.ml.brain import brain_mask

logger = logging.getLogger(__name__)


def study_pattern(
    labels: npt.NDArray[Any],
    *,
    volumes: Mapping[str, npt.NDArray[Any] | None],
    spacing: tuple[float, float, float],
    affine_zyx: npt.NDArray[np.float64] | None,
    registration: Registration | None = None,
) -> tuple[LesionPattern, Registration | None]:
    """The pattern of ``labels`` on a study of ``volumes`` (same grid). Territories, the
    insula and border zones need the AAL atlas and an affine; without them (or when the
    registration fails) they stay unknown. A ``registration`` of the same study (from an
    earlier call) is reused; the one used is returned beside the pattern."""
    brain = brain_mask(volumes)
    affine = affine_zyx
    if affine is None:  # voxel axes as the patient's (z, y, x): sides are still measurable
        affine = np.eye(4)
        affine[0, 2], affine[1, 1], affine[2, 0] = spacing[2], spacing[1], spacing[0]
    atlas = None
    if affine_zyx is not None and brain is not None and brain.any() and atlas_available():
        try:
            if registration is None:
                registration = register_to_mni(brain, affine_zyx)
            atlas = load_atlas()
        except Exception:  # a failed registration leaves the atlas fields unknown
            logger.exception("registration to MNI failed")
            registration = atlas = None
    pattern = lesion_pattern(
        labels,
        spacing=spacing,
        affine_zyx=affine,
        brain=brain,
        registration=registration,
        atlas=atlas,
    )
    return pattern, registration
