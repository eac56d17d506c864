"""Arterial territories and the insula in MNI space, from the AAL atlas (Debian mricron-data).

AAL (Tzourio-Mazoyer et al. 2002) labels 116 grey-matter regions in MNI space. Each region
is given the artery that supplies most of it, following the vascular-territory atlases of
Tatu et al. (Neurology 1998) and Kim et al. (Stroke 2019):

* ACA - medial frontal and parietal cortex (superior frontal medial, orbital medial,
  gyrus rectus, olfactory, anterior and middle cingulum, supplementary motor area,
  paracentral lobule, precuneus);
* PCA - occipital lobe (calcarine, cuneus, lingual, occipital), inferior temporal and
  fusiform gyri, hippocampus, parahippocampal gyrus, posterior cingulum, thalamus
  (thalamoperforating and thalamogeniculate branches);
* VB (vertebrobasilar) - cerebellum and vermis;
* MCA - everything else: lateral frontal, parietal and temporal convexity, the insula
  and operculum, and the basal ganglia (lenticulostriate arteries).

White matter carries no AAL label; a voxel of the MNI brain without one takes the
territory of the nearest labelled voxel, which gives deep white matter its cortical
supplier (a documented simplification: the deep perforator and border-zone anatomy of the
white matter is coarser than this). Pure numpy/scipy/nibabel.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

#: Where Debian's mricron-data puts its MNI-space atlases.
DEFAULT_ATLAS_DIR = Path("/usr/share/mricron/templates")
TERRITORIES: tuple[str, ...] = ("ACA", "MCA", "PCA", "VB")
ANTERIOR = ("ACA", "MCA")
POSTERIOR = ("PCA", "VB")

_ACA = (
    "Frontal_Sup_Medial",
    "Frontal_Med_Orb",
    "Rectus",
    "Olfactory",
    "Cingulum_Ant",
    "Cingulum_Mid",
    "Supp_Motor_Area",
    "Paracentral_Lobule",
    "Precuneus",
)
_PCA = (
    "Calcarine",
    "Cuneus",
    "Lingual",
    "Occipital_Sup",
    "Occipital_Mid",
    "Occipital_Inf",
    "Fusiform",
    "Temporal_Inf",
    "Hippocampus",
    "ParaHippocampal",
    "Cingulum_Post",
    "Thalamus",
)
_DEEP = ("Caudate", "Putamen", "Pallidum", "Thalamus")


def region_territory(name: str) -> str:
    """The territory of an AAL region name (``Insula_L`` -> ``MCA``)."""
    base = name[:-2] if name.endswith(("_L", "_R")) else name
    if base.startswith(("Cerebelum", "Vermis")):
        return "VB"
    if base in _ACA:
        return "ACA"
    if base in _PCA:
        return "PCA"
    return "MCA"


@dataclass(frozen=True)
class Atlas:
    """Territory, insula and deep-grey maps on one MNI grid ``(z, y, x)``.

    Attributes:
        territory: index into :data:`TERRITORIES` + 1 per voxel (0 = outside the brain).
        insula: the AAL insula.
        deep_grey: basal ganglia and thalamus.
        cortex: any AAL cortical region (grey matter other than deep grey and cerebellum).
        affine: ``(k, j, i, 1)`` -> MNI mm.
        boundary_mm: distance (mm) of each brain voxel to the nearest voxel of another
            supratentorial territory (ACA / MCA / PCA): small on border zones.
    """

    territory: npt.NDArray[np.uint8]
    insula: npt.NDArray[np.bool_]
    deep_grey: npt.NDArray[np.bool_]
    cortex: npt.NDArray[np.bool_]
    affine: npt.NDArray[np.float64]
    boundary_mm: npt.NDArray[np.float32]

    def lookup(self, mni: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Voxel indices ``(N, 3)`` (k, j, i) of MNI points, clipped to the grid."""
        inv = np.linalg.inv(self.affine)
        vox = np.rint(np.c_[mni, np.ones(len(mni))] @ inv.T)[:, :3].astype(np.int64)
        clipped: npt.NDArray[np.int64] = np.clip(vox, 0, np.array(self.territory.shape) - 1)
        return clipped


def atlas_dir() -> Path:
    """``STROKEAID_ATLAS_DIR`` or Debian's mricron-data folder."""
    return Path(os.environ.get("STROKEAID_ATLAS_DIR") or DEFAULT_ATLAS_DIR)


def atlas_available(directory: Path | None = None) -> bool:
    folder = directory or atlas_dir()
    return (folder / "aal.nii.gz").is_file() and (folder / "aal.nii.txt").is_file()


@functools.lru_cache(maxsize=2)
def load_atlas(directory: Path | None = None) -> Atlas:
    """The territory atlas from ``aal.nii.gz`` + ``aal.nii.txt`` (resampled to 2 mm).

    Raises:
        FileNotFoundError: the atlas is not installed (``apt-get install mricron-data``).
    """
    import nibabel as nib

    folder = directory or atlas_dir()
    if not atlas_available(folder):
        raise FileNotFoundError(f"AAL atlas not found in {folder} (install mricron-data)")
    img: Any = nib.load(str(folder / "aal.nii.gz"))
    labels = np.asarray(img.dataobj, dtype=np.int32)[::2, ::2, ::2].transpose(2, 1, 0)
    affine_xyz = np.array(img.affine, dtype=np.float64)
    affine_xyz[:3, :3] *= 2.0
    affine = affine_xyz.copy()
    affine[:3, :3] = affine_xyz[:3, [2, 1, 0]]
    names: dict[int, str] = {}
    for line in (folder / "aal.nii.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            names[int(parts[0])] = parts[1]
    lut = np.zeros(max(names, default=0) + 1, dtype=np.uint8)
    insula_lut = np.zeros_like(lut, dtype=bool)
    deep_lut = np.zeros_like(insula_lut)
    for index, name in names.items():
        lut[index] = TERRITORIES.index(region_territory(name)) + 1
        base = name[:-2] if name.endswith(("_L", "_R")) else name
        insula_lut[index] = base == "Insula"
        deep_lut[index] = base in _DEEP
    labels = np.clip(labels, 0, len(lut) - 1)
    grey = lut[labels]
    # The brain: the labelled grey matter closed over the white matter between it.
    brain = ndimage.binary_closing(grey > 0, structure=np.ones((3, 3, 3)), iterations=3)
    brain = ndimage.binary_fill_holes(brain)
    _, nearest = ndimage.distance_transform_edt(grey == 0, return_indices=True)
    territory = grey[tuple(nearest)] * brain
    # Border zones: distance to the nearest voxel of another supratentorial territory.
    boundary = np.full(territory.shape, np.inf, dtype=np.float32)
    supra = [TERRITORIES.index(t) + 1 for t in ("ACA", "MCA", "PCA")]
    for t in supra:
        others = np.isin(territory, [o for o in supra if o != t])
        if others.any():
            dist = ndimage.distance_transform_edt(~others, sampling=2.0).astype(np.float32)
            boundary = np.where(territory == t, np.minimum(boundary, dist), boundary)
    deep = deep_lut[labels]
    cortex = (grey > 0) & ~deep & (grey != TERRITORIES.index("VB") + 1)
    return Atlas(
        territory=territory.astype(np.uint8),
        insula=insula_lut[labels],
        deep_grey=deep,
        cortex=cortex,
        affine=affine,
        boundary_mm=boundary,
    )
