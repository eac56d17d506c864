"""Training: short real runs, schedules, storage, early stopping (inference.ml.trainer)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from inference.ml.predictor import Predictor
from inference.ml.trainer import (
    EpochReport,
    TrainConfig,
    evaluate,
    make_scheduler,
    spec_from_config,
    train,
    unusable_reason,
)
from inference.ml.transforms import (
    AugmentConfig,
)

from .helpers import LABELS, NAMES, make_cases, synthetic_case, tiny_spec, tiny_spec_for


def test_real_short_training_gives_a_loadable_checkpoint_and_prediction(tmp_path: Path) -> None:
    cases = make_cases()
    config = TrainConfig(min_steps=0, epochs=1, batch_size=4, device="cpu", lesion_fraction=0.7)
    spec = tiny_spec_for(config, (32, 16, 8))
    reports: list[EpochReport] = []
    progress: list[float] = []
    ckpt = tmp_path / "run" / "best.pt"
    result = train(
        train_cases=cases[:3],
        val_cases=cases[3:],
        spec=spec,
        config=config,
        on_epoch=reports.append,
        on_progress=progress.append,
        checkpoint_path=ckpt,
    )
    assert result.checkpoint_path == ckpt and ckpt.is_file()
    assert len(reports) == 1 and reports[0].is_best and math.isfinite(reports[0].train_loss)
    assert {"dice_mean", "lesion_f1", "case_accuracy", "case_macro_f1"} <= set(reports[0].metrics)
    assert progress[-1] == 1.0
    assert json.dumps(reports[0].to_dict()) and json.dumps(config.to_dict())
    assert TrainConfig.from_dict(config.to_dict()) == config

    eager = Predictor.load(ckpt, backend="eager", device="cpu")
    case = cases[3]
    out = eager.predict(case.volumes, case.spacing)
    assert case.mask is not None and out.label_volume.shape == case.mask.shape
    assert set(out.timings) == {"preprocess", "infer", "postprocess", "total"}
    # ONNX Runtime path: exported next to the weights, same probabilities as eager.
    fast = Predictor.load(ckpt, backend="onnx")
    assert fast.backend == "onnx" and list(tmp_path.joinpath("run").glob("best.pt.*.onnx"))
    tensor = eager.preprocess(case.volumes)
    assert torch.allclose(
        fast.infer(tensor, case.spacing), eager.infer(tensor, case.spacing), atol=1e-4
    )
    # A study without ADC/FLAIR still predicts, with a note.
    dwi_only = eager.predict({"DWI": case.volumes["DWI"]}, case.spacing)
    assert dwi_only.notes[0].startswith("Series missing: ADC, FLAIR")


def test_learning_rate_schedules_run_for_every_short_run() -> None:
    # OneCycleLR with a 10 % warm-up divides by zero on a run of exactly 10 steps.
    for schedule in ("onecycle", "cosine"):
        config = TrainConfig(schedule=schedule, lr=1e-3)  # type: ignore[arg-type]
        for total in range(1, 41):
            weight = nn.Parameter(torch.zeros(1))
            optimizer = torch.optim.AdamW([weight], lr=config.lr)
            scheduler = make_scheduler(optimizer, config, total)
            rates = []
            for _ in range(total):
                rates.append(optimizer.param_groups[0]["lr"])  # the rate this step uses
                optimizer.step()
                scheduler.step()
            assert all(0.0 <= r <= config.lr * (1 + 1e-9) for r in rates), (schedule, total)
            if total >= 3:  # the rate comes down by the end of the run
                assert rates[-1] < config.lr / 2, (schedule, total)


def test_half_storage_trains_like_float32_and_bad_choices_are_refused() -> None:
    cases = [synthetic_case(f"s{i}", LABELS[i % 2], i, (4, 32, 32)) for i in range(4)]
    losses = {}
    for dtype in ("float32", "float16"):
        config = TrainConfig(
            min_steps=0,
            epochs=2,
            batch_size=2,
            device="cpu",
            augment=AugmentConfig(False),
            storage_dtype=dtype,
        )  # type: ignore[arg-type]
        spec = tiny_spec_for(config)
        result = train(train_cases=cases, val_cases=[], spec=spec, config=config)
        losses[dtype] = [r.train_loss for r in result.history]
    # Same seed, same batches: only the float16 rounding of the stored slices differs.
    assert losses["float16"] == pytest.approx(losses["float32"], rel=0.02)
    assert losses["float16"] != losses["float32"]  # the option really changes the storage
    for field, value in (("storage_dtype", "int8"), ("schedule", "step"), ("monitor", "loss")):
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: value})


def test_early_stopping_waits_for_patience_and_min_epochs() -> None:
    # lr = 0: the weights never change, so every validation after the first is stale.
    cases = [synthetic_case(f"s{i}", LABELS[i % 2], i, (4, 32, 32)) for i in range(3)]
    stopped_at = {}
    for min_epochs in (0, None, 10):
        config = TrainConfig(
            min_steps=0,
            epochs=10,
            batch_size=2,
            lr=0.0,
            device="cpu",
            augment=AugmentConfig(False),
            early_stopping_patience=2,
            validate_every_steps=1,
            min_epochs=min_epochs,
        )
        spec = tiny_spec_for(config)
        result = train(train_cases=cases[:2], val_cases=cases[2:], spec=spec, config=config)
        assert result.best_epoch == 1
        stopped_at[min_epochs] = (len(result.history), result.stopped_early)
    # Two stale validations after epoch 1; by default not before half of the epochs.
    assert stopped_at == {0: (3, True), None: (5, True), 10: (10, False)}


def test_training_can_be_cancelled(tmp_path: Path) -> None:
    cases = [synthetic_case(f"s{i}", LABELS[i % 2], i, (4, 32, 32)) for i in range(2)]
    config = TrainConfig(
        min_steps=0, epochs=5, batch_size=2, device="cpu", augment=AugmentConfig(False)
    )
    spec = tiny_spec_for(config)
    result = train(
        train_cases=cases, val_cases=[], spec=spec, config=config, should_stop=lambda: True
    )
    assert result.cancelled and len(result.history) == 1
    with pytest.raises(ValueError, match="disagree"):
        train(
            train_cases=cases,
            val_cases=[],
            spec=spec,
            config=TrainConfig(min_steps=0, epochs=1, context_slices=config.context_slices + 1),
        )


@pytest.mark.gpu
def test_training_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; none is available")
    cases = make_cases()
    config = TrainConfig(min_steps=0, epochs=2, batch_size=4, device="cuda", amp=True)
    spec = spec_from_config(config, label_values=LABELS, label_names=NAMES)
    result = train(
        train_cases=cases[:3],
        val_cases=cases[3:],
        spec=spec,
        config=config,
        checkpoint_path=tmp_path / "gpu.pt",
    )
    assert result.device.startswith("cuda") and all(
        math.isfinite(r.train_loss) for r in result.history
    )
    predictor = Predictor.load(tmp_path / "gpu.pt", device="cuda")
    assert predictor.backend == "eager"
    out = predictor.predict(cases[3].volumes, cases[3].spacing)
    assert out.label_volume.shape == cases[3].volumes["DWI"].shape


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ({"lesion_dice": 0.8, "lesion_brain_share_max": 0.05}, None),
        ({"lesion_dice": 0.002, "lesion_brain_share_max": 0.9}, "lesion_everywhere"),
        ({"lesion_dice": 0.05, "lesion_brain_share_max": 0.01}, "lesion_dice_near_zero"),
        ({"lesion_dice": 0.0}, "lesion_dice_near_zero"),
        ({}, None),  # nothing validated: nothing to judge by
    ],
)
def test_unusable_rule(metrics: dict[str, float], reason: str | None) -> None:
    assert unusable_reason(metrics) == reason


def test_the_step_budget_outlasts_a_small_epoch_count() -> None:
    cases = make_cases()
    config = TrainConfig(
        epochs=1, min_steps=9, batch_size=4, device="cpu", augment=AugmentConfig(False)
    )
    result = train(
        train_cases=cases[:3], val_cases=cases[3:], spec=tiny_spec_for(config), config=config
    )
    assert result.steps >= 9 and result.planned_steps >= 9 and len(result.history) > 1
    assert not result.undertrained
    # A wall-clock budget that ends the run before the step budget says so.
    rushed = TrainConfig(epochs=1, min_steps=10_000, max_minutes=1e-4, batch_size=4, device="cpu")
    cut = train(train_cases=cases[:3], val_cases=[], spec=tiny_spec_for(rushed), config=rushed)
    assert cut.budget_exhausted and cut.undertrained and cut.steps < 10_000


class _ReplayPredictor:
    """Answers each case with a given label volume: evaluation's arithmetic on known
    outputs, without a network in the way."""

    connectivity = 26

    def __init__(self, answers: dict[int, tuple[np.ndarray, int | None]]) -> None:
        self.answers = answers

    def predict(self, volumes: dict[str, np.ndarray], spacing: object) -> SimpleNamespace:
        label_volume, etiology = self.answers[id(volumes)]
        return SimpleNamespace(
            label_volume=label_volume,
            etiology=etiology,
            brain_volume_ml=1000.0,
            total_lesion_volume_ml=float(np.count_nonzero(label_volume)) / 1000.0,
        )


def test_evaluation_gives_each_headline_figure_a_case_bootstrap_interval() -> None:
    cases = [synthetic_case(f"c{i}", LABELS[i % 2], seed=i, shape=(6, 48, 48)) for i in range(6)]
    answers: dict[int, tuple[np.ndarray, int | None]] = {}
    for i, case in enumerate(cases):
        assert case.mask is not None
        # Three cases found perfectly with the right etiology, three missed entirely.
        found = i < 3
        answers[id(case.volumes)] = (
            case.mask.copy() if found else np.zeros_like(case.mask),
            case.etiology if found else LABELS[4],
        )
    metrics = evaluate(_ReplayPredictor(answers), cases, tiny_spec())  # type: ignore[arg-type]
    assert metrics["n_cases"] == 6 and metrics["n_etiology_cases"] == 6
    assert metrics["case_accuracy"] == pytest.approx(0.5)
    for name in ("dice_mean", "lesion_dice", "lesion_f1", "case_macro_f1", "case_accuracy"):
        lo, hi = metrics[f"{name}_lo"], metrics[f"{name}_hi"]
        assert 0.0 <= lo <= metrics[name] <= hi <= 1.0, name
        assert hi - lo > 0.2, name  # half the cases wrong among six: a wide interval
    # Every case right: nothing to resample but perfection.
    perfect = {id(c.volumes): (c.mask.copy(), c.etiology) for c in cases if c.mask is not None}
    exact = evaluate(_ReplayPredictor(perfect), cases, tiny_spec())  # type: ignore[arg-type]
    assert exact["lesion_dice_lo"] == exact["lesion_dice_hi"] == 1.0
    # One validation case: a figure but no interval.
    single = evaluate(_ReplayPredictor(perfect), cases[:1], tiny_spec())  # type: ignore[arg-type]
    assert single["lesion_dice"] == 1.0 and "lesion_dice_lo" not in single
