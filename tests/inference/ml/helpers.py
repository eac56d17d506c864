"""Shared builders of the ML-core tests: tiny specs and synthetic cases."""

from __future__ import annotations

from typing import Any

import numpy as np

from inference.ml.data import (
    CaseArrays,
)
from inference.ml.networks import (
    ModelSpec,
)
from inference.ml.trainer import (
    TrainConfig,
    spec_from_config,
)

LABELS = (1, 2, 3, 4, 5)
NAMES = ("atherothrombotic", "cardioembolic", "cryptogenic", "lacunar", "other")


def tiny_spec(**kwargs: Any) -> ModelSpec:
    """A small, fast network spec for CPU tests."""
    base: dict[str, Any] = {
        "label_values": LABELS,
        "label_names": NAMES,
        "encoder_depth": 3,
        "decoder_channels": (32, 16, 8),
    }
    base.update(kwargs)
    return ModelSpec(**base)


def tiny_spec_for(config: TrainConfig, decoder: tuple[int, ...] = (16, 8, 8)) -> ModelSpec:
    """The three-stage spec matching a training ``config`` (fast CPU training tests)."""
    return spec_from_config(
        config,
        label_values=LABELS,
        label_names=NAMES,
        encoder_depth=3,
        decoder_channels=decoder,
    )


def synthetic_case(case_id: str, label: int, seed: int, shape: tuple[int, int, int]) -> CaseArrays:
    """Brain-like ellipse with a DWI-bright / ADC-dark blob labelled ``label``."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx]
    brain = ((y - ny / 2) / (ny * 0.4)) ** 2 + ((x - nx / 2) / (nx * 0.35)) ** 2 < 1
    cz, cy, cx = nz // 2, ny // 2 + rng.integers(-8, 8), nx // 2 + rng.integers(-8, 8)
    blob = (((z - cz) / 1.5) ** 2 + ((y - cy) / 5.0) ** 2 + ((x - cx) / 5.0) ** 2 < 1) & brain
    noise = rng.normal(0, 5, shape)
    dwi = np.where(brain, 100.0, 2.0) + noise + 120.0 * blob
    adc = np.where(brain, 800.0, 0.0) + 10 * noise - 350.0 * blob
    flair = np.where(brain, 60.0, 1.0) + noise + 20.0 * blob
    mask = (blob * label).astype(np.uint8)
    volumes = {k: v.astype(np.float32) for k, v in (("DWI", dwi), ("ADC", adc), ("FLAIR", flair))}
    return CaseArrays(case_id, volumes, mask, (5.0, 1.0, 1.0), label)


def make_cases(shape: tuple[int, int, int] = (6, 64, 64)) -> list[CaseArrays]:
    """Four cases: phantoms when the generator is importable and works, else synthetic."""
    etiologies = ("cardioembolic", "atherothrombotic", "lacunar", "cryptogenic")
    out: list[CaseArrays] = []
    try:
        from cases.phantoms.generator import generate_case

        for i, etiology in enumerate(etiologies):
            ph = generate_case(etiology=etiology, seed=i, shape=shape)
            out.append(CaseArrays(f"ph{i}", ph.images, ph.mask, ph.spacing, ph.label_value))
    except Exception:  # noqa: BLE001 - the phantom module is optional for these tests
        out = []
    if out and all(c.mask is not None and c.mask.any() for c in out):
        return out
    return [synthetic_case(f"syn{i}", LABELS[i], i, shape) for i in range(4)]


# --------------------------------------------------------------------------- networks
