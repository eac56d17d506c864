"""Etiology reasoning on phantoms: the three answers side by side on held-out cases.

Trains the U-Net with the platform's default budget on ``--train`` phantom cases (seed A),
fits the case-level model on the approved-mask patterns and the work-up of the same cases
(the leak-free option: no U-Net prediction of a training case is used), then predicts
``--test`` held-out cases (seed B) and reports for each answer the case macro-F1 with its
bootstrap 95 % interval: the segmentation vote, the TOAST rules (pattern + work-up), the
learned model with work-up and imaging-only. Also: the feature gap (the learned model fed
the true masks' patterns instead of the predicted ones), the cryptogenic explorer's hit
rate on the hidden embolic mechanisms, lesion-pattern extraction seconds per 25 x 256 x 256
case (registration included) and the case model's share of prediction time.

    python bench/etiology.py [--train 200] [--test 100] [--device cpu] [--out file.json]
        [--epochs 10] [--lr 1e-3] [--max-minutes 20]

The default is the web form's training budget; ``--epochs 28 --lr 2e-3 --validations 7
--patience 3 --max-minutes 60`` is ``bench/model_quality.py``'s fully trained configuration.

Targets: learned with work-up macro-F1 >= 0.95; learned imaging-only >= vote + 0.05;
pattern extraction <= 10 s per 25 x 256 x 256 case; the case model <= 5 % of prediction time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases.phantoms import DEFAULT_LABEL_VALUES, ETIOLOGIES, PhantomCase, generate_case
from etiology.reasoning.atlas import load_atlas
from etiology.reasoning.case_model import bootstrap_f1, case_features, fit_case_model
from etiology.reasoning.pattern import LesionPattern, lesion_pattern
from etiology.reasoning.registration import register_to_mni
from etiology.reasoning.toast import toast_rules
from inference.ml.brain import brain_mask
from inference.ml.data import CaseArrays
from inference.ml.predictor import Predictor
from inference.ml.trainer import TrainConfig, spec_from_config, train

CLASSES = list(ETIOLOGIES)
NAMES = {DEFAULT_LABEL_VALUES[c]: c for c in CLASSES}


def _zyx(affine: np.ndarray) -> np.ndarray:
    out = np.array(affine, dtype=np.float64)
    out[:3, :3] = out[:3, [2, 1, 0]]
    return out


def phantoms(n: int, seed: int, shape: tuple[int, int, int]) -> list[PhantomCase]:
    return [
        generate_case(etiology=CLASSES[i % len(CLASSES)], seed=seed * 100_000 + i, shape=shape)
        for i in range(n)
    ]


def pattern_of(labels: np.ndarray, case: PhantomCase) -> tuple[LesionPattern, float]:
    """The pattern of ``labels`` on ``case``'s grid (registration included) and its seconds."""
    t0 = time.perf_counter()
    affine = _zyx(case.affine)
    brain = brain_mask(case.images)
    registration = register_to_mni(brain, affine) if brain is not None and brain.any() else None
    pattern = lesion_pattern(
        labels,
        spacing=case.spacing,
        affine_zyx=affine,
        brain=brain,
        registration=registration,
        atlas=load_atlas(),
    )
    return pattern, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--test-seed", type=int, default=22)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--slices", type=int, default=25)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="U-Net epochs (10: the web form's default; 28: bench/model_quality.py's run)",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="U-Net peak learning rate")
    parser.add_argument("--patience", type=int, default=10, help="early stopping (validations)")
    parser.add_argument("--validations", type=int, default=0, help="passes (0: every epoch)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    shape = (args.slices, args.size, args.size)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    train_cases = phantoms(args.train, args.seed, shape)
    test_cases = phantoms(args.test, args.test_seed, shape)
    arrays = [
        CaseArrays(str(i), c.images, c.mask, c.spacing, c.label_value)
        for i, c in enumerate(train_cases)
    ]
    n_val = max(2, len(arrays) // 7)
    config = TrainConfig(
        device=args.device,
        max_minutes=args.max_minutes,
        epochs=args.epochs,
        lr=args.lr,
        early_stopping_patience=args.patience,
        validate_every=max(1, args.epochs // args.validations) if args.validations else 1,
    )
    spec = spec_from_config(
        config, label_values=sorted(NAMES), label_names=[NAMES[v] for v in sorted(NAMES)]
    )
    t0 = time.perf_counter()
    result = train(train_cases=arrays[n_val:], val_cases=arrays[:n_val], spec=spec, config=config)
    log(f"U-Net: {result.steps} steps, {time.perf_counter() - t0:.0f} s, {result.best_metrics}")
    predictor = Predictor(result.model, spec, args.device)

    # Fit on the approved (here: true) masks' patterns + work-up: no prediction of a
    # training case is ever used.
    rows_w, rows_i, labels = [], [], []
    for case in train_cases:
        pattern, _ = pattern_of(case.mask, case)
        rows_w.append(case_features(pattern, case.workup))
        rows_i.append(case_features(pattern, None))
        labels.append(case.etiology)
    with_workup = fit_case_model(rows_w, labels, uses_workup=True)
    imaging_only = fit_case_model(rows_i, labels, uses_workup=False)
    log("case models fitted")

    truth: list[str] = []
    answers: dict[str, list[str | None]] = {
        k: []
        for k in (
            "segmentation_vote",
            "toast_rules",
            "learned_with_workup",
            "learned_imaging_only",
            "learned_true_masks",
        )
    }
    pattern_seconds, predict_seconds, model_seconds = [], [], []
    explorer_hits = explorer_n = 0
    for case in test_cases:
        t = time.perf_counter()
        out = predictor.predict(case.images, case.spacing)
        predict_seconds.append(time.perf_counter() - t)
        pattern, seconds = pattern_of(out.label_volume, case)
        pattern_seconds.append(seconds)
        truth.append(case.etiology)
        answers["segmentation_vote"].append(NAMES.get(out.etiology) if out.etiology else None)
        answers["toast_rules"].append(
            toast_rules(pattern if pattern.count else None, case.workup).etiology
        )
        t = time.perf_counter()
        learned = with_workup.answer(case_features(pattern, case.workup))
        model_seconds.append(time.perf_counter() - t)
        answers["learned_with_workup"].append(learned["etiology"])
        imaging = imaging_only.answer(case_features(pattern, None))
        answers["learned_imaging_only"].append(imaging["etiology"])
        true_pattern, _ = pattern_of(case.mask, case)
        answers["learned_true_masks"].append(
            with_workup.answer(case_features(true_pattern, case.workup))["etiology"]
        )
        if case.etiology == "cryptogenic" and case.hidden_mechanism:
            explorer_n += 1
            explorer_hits += imaging["etiology"] == case.hidden_mechanism
    report: dict[str, Any] = {
        "benchmark": "etiology",
        "device": args.device,
        "train_cases": len(train_cases),
        "test_cases": len(test_cases),
        "shape": list(shape),
        "unet": {
            "steps": result.steps,
            "epochs": args.epochs,
            "minutes": round(result.total_seconds / 60, 1),
            "val_lesion_dice": round(result.best_metrics.get("lesion_dice", float("nan")), 4),
        },
        "macro_f1": {k: bootstrap_f1(truth, v, CLASSES) for k, v in answers.items()},
        "explorer_hidden_embolic_found": {"hits": explorer_hits, "of": explorer_n},
        "pattern_seconds_median": round(statistics.median(pattern_seconds), 2),
        "case_model_share_of_prediction": round(
            statistics.median(model_seconds) / statistics.median(predict_seconds), 4
        ),
    }
    # Pattern extraction at the clinical size (registration included), a few cases.
    full = phantoms(3, args.seed + 7, (25, 256, 256))
    report["pattern_seconds_25x256x256"] = round(
        statistics.median(pattern_of(c.mask, c)[1] for c in full), 2
    )
    f1 = report["macro_f1"]
    report["targets"] = {
        "learned_with_workup_ge_0.95": f1["learned_with_workup"]["f1"] >= 0.95,
        "imaging_only_ge_vote_plus_0.05": f1["learned_imaging_only"]["f1"]
        >= f1["segmentation_vote"]["f1"] + 0.05,
        "pattern_le_10s": report["pattern_seconds_25x256x256"] <= 10.0,
        "case_model_le_5pct": report["case_model_share_of_prediction"] <= 0.05,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
