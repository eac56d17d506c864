"""What the network need not learn from scratch: the head, the ADC unit, the infarct core.

* :func:`brain_mask` - the head/brain region of a study, from its own images (never the air
  around the head): intensity normalisation is measured inside it, and a lesion outside it
  is impossible.
* :func:`adc_unit` - ADC maps are stored in mm^2/s, 10^-3 mm^2/s or 10^-6 mm^2/s depending
  on vendor and converter; the unit is read off the values of the brain itself.
* :func:`core_prior` - the acute infarct core definition of the large thrombectomy trials
  (DEFUSE 3, RAPID: ADC below 620 x 10^-6 mm^2/s) as a soft 0..1 channel.

Pure numpy / scipy: no Django, no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float32]

#: ADC of the acute infarct core, in 10^-6 mm^2/s (DEFUSE 3 / RAPID).
CORE_ADC_THRESHOLD = 620.0
#: Width of the soft threshold (10^-6 mm^2/s): normal white matter (~700-800) stays near 0.
CORE_ADC_WIDTH = 40.0
#: Kinds whose images show the head best, in order of preference for the brain mask.
MASK_KINDS: tuple[str, ...] = ("DWI", "FLAIR", "ADC")
#: Unit name -> factor that brings the values to 10^-6 mm^2/s.
ADC_UNIT_FACTORS: dict[str, float] = {"mm2/s": 1e6, "1e-3": 1e3, "1e-6": 1.0}

_MAX_SAMPLE = 1 << 18


def _sample(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    flat = values.reshape(-1)
    return flat[:: max(1, flat.size // _MAX_SAMPLE)]


def _finite(image: npt.NDArray[Any]) -> FloatArray:
    data = np.asarray(image, dtype=np.float32)
    if not np.isfinite(data).all():
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return data


def _otsu(values: FloatArray, bins: int = 128) -> float:
    """Otsu's threshold of ``values`` (a 1-D sample)."""
    hist, edges = np.histogram(values, bins=bins)
    hist = hist.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(centres[int(np.argmax(between[:-1]))]) if bins > 1 else float(centres[0])


#: Below this correlation of neighbouring pixels a series is noise, not an image of a head:
#: MR images are smooth at the pixel scale (the head/air edge, tissue), noise is not.
MIN_NEIGHBOUR_CORRELATION = 0.3


def neighbour_correlation(image: npt.NDArray[Any]) -> float:
    """Pearson correlation of horizontally adjacent pixels (1 for smooth images, ~0 for
    white noise), on a regular subsample; 0 for a constant image."""
    data = _finite(image)
    if data.shape[-1] < 2:
        return 0.0
    left = _sample(np.ascontiguousarray(data[..., :-1]))
    right = _sample(np.ascontiguousarray(data[..., 1:]))
    if float(left.std()) == 0.0 or float(right.std()) == 0.0:
        return 0.0
    return float(np.corrcoef(left, right)[0, 1])


def head_mask(image: npt.NDArray[Any]) -> BoolArray:
    """The head in one series (z, y, x): above an Otsu threshold of the intensities between
    the darkest voxels and the 99th percentile, holes filled slice by slice, the largest
    3-D component kept.

    Otsu separates the two populations of an MR magnitude image - air (noise near zero,
    any scanner scale) and tissue - without a fixed fraction that would depend on the
    contrast. Returns all ``False`` for a constant image and for noise (see
    :func:`neighbour_correlation`): there is no head to find lesions in.
    """
    data = _finite(image)
    if neighbour_correlation(data) < MIN_NEIGHBOUR_CORRELATION:
        return np.zeros(data.shape, dtype=bool)
    sample = _sample(data)
    lo = float(sample.min())
    hi = float(np.percentile(sample, 99.0))
    if not hi > lo:
        return np.zeros(data.shape, dtype=bool)
    threshold = _otsu(np.clip(sample, lo, hi))
    mask = data > threshold
    if data.ndim == 3:
        for z in range(mask.shape[0]):
            if mask[z].any():
                mask[z] = ndimage.binary_fill_holes(mask[z])
    else:
        mask = ndimage.binary_fill_holes(mask)
    labelled, n = ndimage.label(mask)
    if n > 1:
        sizes = np.bincount(labelled.ravel())
        sizes[0] = 0
        mask = labelled == int(np.argmax(sizes))
    return np.asarray(mask, dtype=bool)


def brain_mask(volumes: Mapping[str, npt.NDArray[Any] | None]) -> BoolArray | None:
    """The head/brain region of a study, from the first present kind of :data:`MASK_KINDS`.

    DWI is preferred: at b = 1000 the scalp's fat and the air are dark while parenchyma is
    not, and acute lesions are bright (inside the mask). Returns ``None`` when no such
    series is present.
    """
    for kind in MASK_KINDS:
        image = volumes.get(kind)
        if image is not None and np.ndim(image) == 3:
            return head_mask(image)
    return None


def adc_unit(adc: npt.NDArray[Any], mask: BoolArray | None = None) -> str:
    """The unit an ADC map is stored in: ``"mm2/s"``, ``"1e-3"`` or ``"1e-6"``.

    Brain tissue has an ADC of ~0.6-1.0 x 10^-3 mm^2/s and CSF ~3 x 10^-3, so the median of
    the positive values inside the head lies within a factor of ~5 of 10^-3 mm^2/s in every
    unit; the decades between the units (10^3) leave no ambiguity.
    """
    data = _finite(adc)
    values = data[mask] if mask is not None and mask.shape == data.shape and mask.any() else data
    positive = _sample(values[values > 0])
    if positive.size == 0:
        return "1e-6"
    median = float(np.median(positive))
    if median < 0.05:
        return "mm2/s"
    if median < 50.0:
        return "1e-3"
    return "1e-6"


def adc_micro(adc: npt.NDArray[Any], mask: BoolArray | None = None) -> FloatArray:
    """The ADC map in 10^-6 mm^2/s whatever unit it was stored in (see :func:`adc_unit`)."""
    factor = ADC_UNIT_FACTORS[adc_unit(adc, mask)]
    return (_finite(adc) * np.float32(factor)).astype(np.float32, copy=False)


def core_prior(
    adc: npt.NDArray[Any],
    mask: BoolArray | None = None,
    *,
    threshold: float = CORE_ADC_THRESHOLD,
    width: float = CORE_ADC_WIDTH,
) -> FloatArray:
    """Soft infarct-core map: ``sigmoid((threshold - ADC) / width)`` inside the head, 0 out.

    Voxels with ADC <= 0 are the scanner's masked background (or a failed fit), not tissue
    with restricted diffusion, and get 0.
    """
    micro = adc_micro(adc, mask)
    out = 1.0 / (
        1.0 + np.exp(np.clip((micro - np.float32(threshold)) / np.float32(width), -30, 30))
    )
    result: FloatArray = out.astype(np.float32, copy=False)
    result[micro <= 0] = 0.0
    if mask is not None and mask.shape == result.shape:
        result[~mask] = 0.0
    return result
