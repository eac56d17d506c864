"""Fixtures of the inference tests: tiny phantom cases in the database, a registered model."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from annotation.models import Annotation
from annotation.selectors import mask_array
from annotation.services import annotation_import_mask
from cases.models import Case, Label, LabelSet
from cases.phantoms import generate_case
from cases.services.case import case_create
from cases.services.series import series_create_from_phantom
from inference.ml.networks import ModelSpec, build_from_spec, save_checkpoint
from inference.models import DatasetItem, ModelVersion
from inference.services.dataset import dataset_snapshot_create
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
        return tiny_model_register(
            name,
            dataset=None,
            user=data_manager,
            activate=activate,
            unusable_reason=unusable_reason,
        )

    return _register


@pytest.fixture
def store_prediction() -> Callable[..., Any]:
    """Stores a finished prediction of ``model`` for ``case`` as the prediction service leaves
    it (label volume on the DWI grid, answer and probabilities), so pages and comparisons can
    be tested with known outputs."""
    from cases import storage
    from cases.models import Label
    from inference.models import JobStatus, PredictionJob, PredictionSeries

    def _store(
        *, case: Any, model: Any, labels: Any, etiology: str, user: Any, confidence: float = 0.7
    ) -> Any:
        dwi = case.series.get(kind="DWI")
        label = Label.objects.get(label_set=model.label_set, name=etiology)
        others = Label.objects.filter(label_set=model.label_set).exclude(pk=label.pk)
        rest = (1.0 - confidence) / max(1, others.count())
        job = PredictionJob.objects.create(
            case=case,
            model=model,
            status=JobStatus.DONE,
            progress=1.0,
            reference_series=dwi,
            etiology=label,
            confidence=confidence,
            probabilities={label.name: confidence, **{o.name: rest for o in others}},
            created_by=user,
        )
        key, _sha, _n = storage.write_array(
            storage.prediction_key(prediction_id=job.pk, series_id=dwi.pk, name="labels.npy"),
            np.ascontiguousarray(labels, dtype=np.uint8),
        )
        for s in case.series.filter(kind__in=["DWI", "ADC", "FLAIR"]):
            PredictionSeries.objects.create(
                job=job, series=s, labels_key=key, shape=list(labels.shape), probabilities_key=""
            )
        return job

    return _store


def tiny_model_register(
    name: str, *, dataset: Any, user: Any, activate: bool, unusable_reason: str = ""
) -> ModelVersion:
    """A real (untrained) checkpoint of the tiny U-Net, registered through the registry."""
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
        path = save_checkpoint(Path(tmp) / "w.pt", model=build_from_spec(spec), spec=spec, epoch=0)
        return model_version_register(
            name=name,
            checkpoint_file=path,
            spec=spec.to_dict(),
            label_set=label_set,
            dataset=dataset,
            user=user,
            activate=activate,
            unusable_reason=unusable_reason,
        )


@pytest.fixture
def two_models(make_phantom_case, data_manager, store_prediction):
    """An active model that finds every test lesion and names every etiology, and a
    candidate trained on a snapshot whose test cases it gets all wrong."""

    def _make(*, candidate_good: bool) -> tuple[ModelVersion, ModelVersion, list[int]]:
        for seed, etiology in enumerate(["cardioembolic", "lacunar"] * 4, start=30):
            make_phantom_case(etiology, seed=seed)
        snapshot = dataset_snapshot_create(user=data_manager, fractions=(0.5, 0.25, 0.25))
        active = tiny_model_register("active", dataset=None, user=data_manager, activate=True)
        candidate = tiny_model_register(
            "candidate", dataset=snapshot, user=data_manager, activate=True
        )
        test_items = list(DatasetItem.objects.filter(snapshot=snapshot, split="test"))
        assert test_items
        for item in test_items:
            annotation = Annotation.objects.get(series__case=item.case, state="approved")
            truth = mask_array(revision=annotation.current_revision)
            true_name = item.etiology.name
            wrong = "lacunar" if true_name != "lacunar" else "cardioembolic"
            good = {"labels": truth, "etiology": true_name}
            bad = {"labels": np.zeros_like(truth), "etiology": wrong}
            store_prediction(
                case=item.case, model=active, user=data_manager, **(bad if candidate_good else good)
            )
            store_prediction(
                case=item.case,
                model=candidate,
                user=data_manager,
                **(good if candidate_good else bad),
            )
        return active, candidate, [i.case_id for i in test_items]

    return _make
