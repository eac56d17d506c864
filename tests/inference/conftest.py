"""Fixtures of the inference tests: tiny phantom cases in the database, a registered model."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from annotation.models import Annotation
from annotation.services import annotation_import_mask
from cases.models import Case
from cases.phantoms import generate_case
from cases.services.case import case_create
from cases.services.series import series_create_from_phantom
from inference.ml.networks import ModelSpec, build_from_spec, save_checkpoint
from inference.models import ModelVersion
from inference.services.prediction import predictor_cache_clear
from inference.services.registry import model_version_register

TINY = (6, 64, 64)
#: The smallest U-Net the ML core builds: fast enough to train for real in the CPU suite.
TINY_PARAMS: dict[str, Any] = {
    "encoder": "mobilenet_v2",
    "encoder_depth": 3,
    "decoder_channels": [32, 16, 8],
    "batch_size": 4,
    "augment": {"enabled": False},
    "early_stopping_patience": 0,
    "min_steps": 0,
}


@pytest.fixture(autouse=True)
def _fresh_predictors() -> None:
    # Each test database has its own weights files: never reuse a cached predictor.
    predictor_cache_clear()


@pytest.fixture
def make_phantom_case(data_manager: Any) -> Callable[..., Case]:
    """Creates a confirmed phantom case with DWI/ADC/FLAIR and an approved DWI mask."""

    counter = {"n": 0}

    def _make(
        etiology: str = "cardioembolic",
        *,
        seed: int | None = None,
        kinds: tuple[str, ...] = ("DWI", "ADC", "FLAIR"),
        state: str = Annotation.State.APPROVED,
        created_by: Any = None,
        shape: tuple[int, int, int] = TINY,
        mask: bool = True,
    ) -> Case:
        counter["n"] += 1
        seed = seed if seed is not None else counter["n"]
        phantom = generate_case(etiology=etiology, seed=seed, shape=shape)
        case = case_create(
            user=created_by or data_manager,
            code=f"PH-T{counter['n']:03d}-{seed}",
            etiology=etiology,
            confirmed=True,
        )
        series = series_create_from_phantom(
            case=case, phantom=phantom, uid_stem=f"{seed}{counter['n']}", kinds=kinds
        )
        if mask and kinds:
            annotation_import_mask(
                user=data_manager,
                series=series[kinds[0]],
                mask=phantom.mask,
                state=state,
            )
        return case

    return _make


@pytest.fixture
def registered_model(data_manager: Any) -> Callable[..., ModelVersion]:
    """Registers a real (untrained) checkpoint of the tiny U-Net through the registry."""

    def _register(
        *, activate: bool = True, name: str = "tiny", unusable_reason: str = ""
    ) -> ModelVersion:
        from cases.models import Label, LabelSet

        label_set = LabelSet.objects.get(is_active=True)
        labels = list(Label.objects.filter(label_set=label_set).order_by("value"))
        spec = ModelSpec(
            label_values=tuple(lab.value for lab in labels),
            label_names=tuple(lab.name for lab in labels),
            encoder="mobilenet_v2",
            encoder_depth=3,
            decoder_channels=(32, 16, 8),
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = save_checkpoint(
                Path(tmp) / "w.pt", model=build_from_spec(spec), spec=spec, epoch=0
            )
            return model_version_register(
                name=name,
                checkpoint_file=path,
                spec=spec.to_dict(),
                label_set=label_set,
                activate=activate,
                user=data_manager,
                unusable_reason=unusable_reason,
            )

    return _register
