"""A clinic's first 24 cases: default training learns the lesions, and never the whole head.

Phantoms in acquisition variants (ADC units, scanner scales, matrices and pixel sizes the
defaults were not tuned on) at a small size so the run fits the test suite: 3 mm pixels
and a three-stage network instead of 1.5 mm and five stages (``bench/small_data.py``
measures the real defaults). Fixed seeds: the floor below is this run's, with a margin.
"""

from __future__ import annotations

import numpy as np
import pytest

from cases.phantoms import ETIOLOGIES, generate_case
from inference.ml.data import CaseArrays
from inference.ml.metrics import OverlapCounts, overlap_counts
from inference.ml.predictor import Predictor
from inference.ml.trainer import TrainConfig, TrainResult, spec_from_config, train

pytestmark = pytest.mark.slow

CLASSES = ETIOLOGIES[:4]
LABELS = [1, 2, 3, 4]
#: Held-out lesion Dice this configuration must reach: measured 0.73-0.89 on these seeds
#: (CPU training is not bit-reproducible: threaded kernels); a network that labels the
#: head, or nothing, scores ~0.
DICE_FLOOR = 0.6


def _variant(i: int) -> dict[str, object]:
    matrix = (64, 96)[i % 2]
    pixel = (3.6, 2.4)[i % 2] * (1.0 + 0.05 * (i % 3))
    return {
        "shape": (8 + i % 5, matrix, matrix),
        "spacing": (15.0 - i % 5, pixel, pixel),
        "adc_unit": ("1e-6", "1e-3", "mm2/s")[i % 3],
        "intensity_scale": (0.02, 1.0, 60.0)[(i // 3) % 3],
    }


def _cases(n: int, seed: int) -> list[CaseArrays]:
    out = []
    for i in range(n):
        etiology = CLASSES[i % len(CLASSES)]
        ph = generate_case(etiology=etiology, seed=seed + i, **_variant(i))  # type: ignore[arg-type]
        labels = dict(zip(CLASSES, LABELS, strict=True))
        mask = np.where(ph.mask > 0, labels[etiology], 0).astype(np.uint8)
        out.append(CaseArrays(f"{seed}-{i}", ph.images, mask, ph.spacing, labels[etiology]))
    return out


@pytest.fixture(scope="module")
def trained() -> tuple[TrainResult, Predictor]:
    cases = _cases(24, seed=1000)
    config = TrainConfig(
        epochs=10,  # the web form's default: the step budget decides
        device="cpu",
        seed=3,
        batch_size=8,
        target_spacing=3.0,
        min_steps=600,
        validate_every_steps=50,
    )
    spec = spec_from_config(
        config,
        label_values=LABELS,
        label_names=list(CLASSES),
        encoder_depth=3,
        decoder_channels=(32, 16, 8),
    )
    result = train(train_cases=cases[4:], val_cases=cases[:4], spec=spec, config=config)
    return result, Predictor(result.model, spec, "cpu")


def test_24_cases_learn_the_lesions(trained: tuple[TrainResult, Predictor]) -> None:
    result, predictor = trained
    assert result.steps >= 600 and not result.undertrained
    pooled = OverlapCounts(0, 0, 0)
    for case in _cases(8, seed=5000):
        assert case.mask is not None
        out = predictor.predict(case.volumes, case.spacing)
        assert not out.flags
        assert out.label_volume.shape == case.mask.shape  # back on the series' own grid
        pooled = pooled + overlap_counts(out.label_volume != 0, case.mask != 0, [1])[1]
    assert pooled.dice >= DICE_FLOOR


def test_an_empty_head_and_pure_noise_are_no_lesion(
    trained: tuple[TrainResult, Predictor],
) -> None:
    _, predictor = trained
    healthy = generate_case(
        etiology="lacunar", seed=77, healthy=True, shape=(10, 96, 96), adc_unit="1e-3"
    )
    assert not healthy.mask.any()
    out = predictor.predict(healthy.images, healthy.spacing)
    assert out.etiology is None and out.total_lesion_volume_ml < 0.5
    rng = np.random.default_rng(0)
    noise = {
        "DWI": np.abs(rng.normal(0, 100, (10, 96, 96))).astype(np.float32),
        "ADC": rng.uniform(0, 3000, (10, 96, 96)).astype(np.float32),
        "FLAIR": np.abs(rng.normal(0, 100, (10, 96, 96))).astype(np.float32),
    }
    out = predictor.predict(noise, (5.0, 2.4, 2.4))
    # Noise is no head: no lesion, no etiology, and it says why.
    assert out.etiology is None and out.n_lesions == 0 and out.flags == ["no_head"]
    assert not out.label_volume.any()
