"""Affine registration of a study to the MNI152 template (SimpleITK), on brain masks.

A DWI or FLAIR and the T1 template share no intensity scale, but the outline of the brain
is the same organ in every contrast: smoothed brain masks are registered with a
mean-squares metric (moments initialisation, a similarity transform over three
resolutions, then a 12-parameter affine over the two finer ones). The
result maps the study's world coordinates (RAS mm) to MNI coordinates, which is all an
atlas look-up needs (vascular territories are tens of millimetres wide).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Registration:
    """``world_to_mni``: 4 x 4 matrix from the study's RAS mm to MNI RAS mm.

    ``overlap``: share of the study's brain voxels inside the template's brain mask after
    registration (a failed registration scores low; callers drop atlas answers below it).
    """

    world_to_mni: FloatArray
    overlap: float

    def to_mni(self, points_ras: npt.NDArray[np.float64]) -> FloatArray:
        """``(N, 3)`` RAS points of the study in MNI coordinates."""
        pts = np.asarray(points_ras, dtype=np.float64).reshape(-1, 3)
        return pts @ self.world_to_mni[:3, :3].T + self.world_to_mni[:3, 3]


def _sitk_image(volume: npt.NDArray[Any], affine_zyx: FloatArray) -> Any:
    """A SimpleITK image whose physical frame is RAS mm (consistent for both images)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(volume, dtype=np.float32))
    # Array (k, j, i) -> image index (i, j, k): the affine's columns in x, y, z order.
    columns = affine_zyx[:3, [2, 1, 0]]
    spacing = np.linalg.norm(columns, axis=0)
    direction = columns / spacing
    # SimpleITK needs an orthonormal direction: the nearest one (polar decomposition).
    u, _, vt = np.linalg.svd(direction)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in (u @ vt).ravel()])
    image.SetOrigin([float(v) for v in affine_zyx[:3, 3]])
    return image


def _zyx_affine(affine_xyz: FloatArray) -> FloatArray:
    """A nibabel (x, y, z)-ordered affine as the affine of the transposed (z, y, x) array."""
    out = np.array(affine_xyz, dtype=np.float64)
    out[:3, :3] = out[:3, [2, 1, 0]]
    return out


@functools.lru_cache(maxsize=1)
def template_mask() -> tuple[npt.NDArray[np.float32], FloatArray]:
    """The MNI152 brain mask that nilearn ships (2 mm), as ``(z, y, x)`` + its affine."""
    from nilearn import datasets

    img = datasets.load_mni152_brain_mask(resolution=2)
    data = np.asarray(img.get_fdata(), dtype=np.float32).transpose(2, 1, 0)
    return data, _zyx_affine(np.asarray(img.affine, dtype=np.float64))


def _downsample(
    mask: npt.NDArray[np.bool_], affine_zyx: FloatArray, target_mm: float = 3.0
) -> tuple[npt.NDArray[np.float32], FloatArray]:
    """Block-average a mask to ~``target_mm`` in-plane (slices kept) for a fast metric."""
    spacing = np.linalg.norm(affine_zyx[:3, :3], axis=0)
    factors = [1, max(1, int(target_mm // spacing[1])), max(1, int(target_mm // spacing[2]))]
    if factors == [1, 1, 1]:
        return mask.astype(np.float32), affine_zyx
    nz, ny, nx = mask.shape
    cut = mask[:, : ny - ny % factors[1], : nx - nx % factors[2]].astype(np.float32)
    small = cut.reshape(nz, cut.shape[1] // factors[1], factors[1], -1, factors[2]).mean(
        axis=(2, 4)
    )
    scaled = affine_zyx.copy()
    scaled[:3, 1] *= factors[1]
    scaled[:3, 2] *= factors[2]
    # Voxel centres move by half a (new) voxel minus half an old one.
    scaled[:3, 3] += (
        affine_zyx[:3, 1] * (factors[1] - 1) / 2 + affine_zyx[:3, 2] * (factors[2] - 1) / 2
    )
    return small, scaled


def register_to_mni(brain: npt.NDArray[np.bool_], affine_zyx: FloatArray) -> Registration:
    """Affine registration of a study's brain mask ``(z, y, x)`` with voxel-to-RAS
    ``affine_zyx`` (index ``(k, j, i, 1)`` -> RAS mm) to the MNI152 brain mask.

    Raises:
        ValueError: the mask is empty.
    """
    import SimpleITK as sitk

    if not brain.any():
        raise ValueError("an empty brain mask cannot be registered")
    fixed_data, fixed_affine = template_mask()
    moving_data, moving_affine = _downsample(brain, np.asarray(affine_zyx, dtype=np.float64))
    fixed = sitk.SmoothingRecursiveGaussian(_sitk_image(fixed_data, fixed_affine), 4.0)
    moving = sitk.SmoothingRecursiveGaussian(_sitk_image(moving_data, moving_affine), 4.0)
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Similarity3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    similarity = _run(fixed, moving, initial, levels=([4, 2, 1], [2.0, 1.0, 0.0]))
    # Then the 12-parameter affine from there, at the finer levels (head shapes differ by
    # more than one scale).
    affine_start = sitk.AffineTransform(3)
    affine_start.SetCenter(similarity.GetCenter())
    affine_start.SetMatrix(similarity.GetMatrix())
    affine_start.SetTranslation(similarity.GetTranslation())
    transform = _run(fixed, moving, affine_start, levels=([2, 1], [1.0, 0.0]))
    affine = sitk.AffineTransform(transform)
    matrix = np.asarray(affine.GetMatrix(), dtype=np.float64).reshape(3, 3)
    center = np.asarray(affine.GetCenter(), dtype=np.float64)
    translation = np.asarray(affine.GetTranslation(), dtype=np.float64)
    mni_to_world = np.eye(4)
    mni_to_world[:3, :3] = matrix
    mni_to_world[:3, 3] = translation + center - matrix @ center
    world_to_mni = np.asarray(np.linalg.inv(mni_to_world), dtype=np.float64)
    overlap = _overlap(brain, np.asarray(affine_zyx, dtype=np.float64), world_to_mni)
    return Registration(world_to_mni=world_to_mni, overlap=overlap)


def _run(fixed: Any, moving: Any, initial: Any, *, levels: tuple[list[int], list[float]]) -> Any:
    """One registration (mean squares, regular-step gradient descent) from ``initial``."""
    import SimpleITK as sitk

    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    # Every voxel of the (small, smoothed) masks: a sampled metric made the result depend
    # on the sample and the thread count by a few millimetres.
    method.SetMetricSamplingStrategy(method.NONE)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-5, numberOfIterations=300, relaxationFactor=0.6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(levels[0])
    method.SetSmoothingSigmasPerLevel(levels[1])
    method.SetInitialTransform(initial, inPlace=False)
    transform = method.Execute(fixed, moving)
    # The result maps template (fixed) points to study (moving) points.
    if isinstance(transform, sitk.CompositeTransform):
        transform = transform.GetNthTransform(0)
    return transform


def _overlap(
    brain: npt.NDArray[np.bool_], affine_zyx: FloatArray, world_to_mni: FloatArray
) -> float:
    """Share of the study's brain voxels that land inside the template's brain mask."""
    fixed_data, fixed_affine = template_mask()
    k, j, i = np.nonzero(brain)
    step = max(1, k.size // 20000)
    idx = np.stack([k[::step], j[::step], i[::step], np.ones(k[::step].size)], axis=0)
    vox = np.linalg.inv(fixed_affine) @ (world_to_mni @ (affine_zyx @ idx))
    inside = ndimage.map_coordinates(fixed_data, vox[:3], order=0, mode="constant", cval=0.0)
    return float(np.mean(inside > 0.5))
