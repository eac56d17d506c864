"""Model quality on phantoms: train on one seed's cases, evaluate on another seed's held-out set.

Runs the ML core directly (no Django) for speed. Prints JSON with lesion Dice (foreground,
pooled), mean per-label Dice, lesion-wise F1 and case-level etiology macro-F1, against the
phantom targets (Dice >= 0.85, macro-F1 >= 0.90). Default config is sized for ~15 min on 2
CPU cores; use --device cuda and bigger --train/--epochs/--size on a GPU.

    python bench/model_quality.py [--train 40] [--test 20] [--epochs 20] [--size 128]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases.phantoms import DEFAULT_LABEL_VALUES, ETIOLOGIES, generate_case
from inference.ml.data import CaseArrays
from inference.ml.metrics import (
    LesionDetection,
    OverlapCounts,
    classification_report,
    lesion_detection,
    overlap_counts,
)
from inference.ml.predictor import Predictor
from inference.ml.trainer import TrainConfig, spec_from_config, train


def make_cases(n: int, seed: int, shape: tuple[int, int, int]) -> list[CaseArrays]:
    out = []
    for i in range(n):
        etiology = ETIOLOGIES[i % len(ETIOLOGIES)]
        ph = generate_case(etiology=etiology, seed=seed * 100_000 + i, shape=shape)
        out.append(
            CaseArrays(
                case_id=f"{seed}-{i}",
                volumes=ph.images,
                mask=ph.mask,
                spacing=ph.spacing,
                etiology=ph.label_value,
            )
        )
    return out


def evaluate(predictor: Predictor, cases: list[CaseArrays], labels: list[int]) -> dict[str, float]:
    fg = OverlapCounts(0, 0, 0)
    pooled = {lab: OverlapCounts(0, 0, 0) for lab in labels}
    det = LesionDetection(0, 0, 0, 0)
    truths, preds = [], []
    for case in cases:
        assert case.mask is not None
        out = predictor.predict(case.volumes, case.spacing)
        fg = fg + overlap_counts(out.label_volume != 0, case.mask != 0, [1])[1]
        for lab, c in overlap_counts(out.label_volume, case.mask, labels).items():
            pooled[lab] = pooled[lab] + c
        det = det + lesion_detection(out.label_volume, case.mask)
        truths.append(case.etiology)
        preds.append(out.etiology)
    seen = [c.dice for c in pooled.values() if c.tp + c.fp + c.fn]
    report = classification_report(truths, preds, labels)
    return {
        "lesion_dice": fg.dice,
        "label_dice_mean": float(np.mean(seen)) if seen else 1.0,
        "lesion_f1": det.f1,
        "case_accuracy": report.accuracy,
        "case_macro_f1": report.macro_f1,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=40)
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--test", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--size", type=int, default=128, help="network input size (0 = native 256)")
    p.add_argument("--shape", type=int, nargs=3, default=[25, 256, 256])
    p.add_argument("--encoder", default="mobilenet_v2")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=1, help="training seeds (median reported)")
    p.add_argument("--train-seed", type=int, default=1)
    p.add_argument("--test-seed", type=int, default=2)
    args = p.parse_args()
    shape = tuple(args.shape)
    t0 = time.perf_counter()
    train_cases = make_cases(args.train + args.val, args.train_seed, shape)  # type: ignore[arg-type]
    test_cases = make_cases(args.test, args.test_seed, shape)  # type: ignore[arg-type]
    gen_s = time.perf_counter() - t0
    labels = sorted(DEFAULT_LABEL_VALUES.values())
    names = sorted(DEFAULT_LABEL_VALUES, key=DEFAULT_LABEL_VALUES.__getitem__)
    runs = []
    for r in range(args.repeats):
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=2e-3,
            seed=r,
            encoder=args.encoder,
            image_size=(args.size, args.size) if args.size else None,
            early_stopping_patience=0,
            validate_every=max(1, args.epochs // 4),
            device=args.device,
            lesion_fraction=0.7,
        )
        spec = spec_from_config(config, label_values=labels, label_names=names)
        t1 = time.perf_counter()
        result = train(
            train_cases=train_cases[: args.train],
            val_cases=train_cases[args.train :],
            spec=spec,
            config=config,
        )
        train_s = time.perf_counter() - t1
        predictor = Predictor(result.model, spec, args.device, backend="eager")
        metrics = evaluate(predictor, test_cases, labels)
        metrics.update(train_seconds=train_s, best_epoch=result.best_epoch)
        runs.append(metrics)
        print(json.dumps({"repeat": r, **metrics}), file=sys.stderr)
    keys = ["lesion_dice", "label_dice_mean", "lesion_f1", "case_accuracy", "case_macro_f1"]
    median = {k: statistics.median(run[k] for run in runs) for k in keys}
    print(
        json.dumps(
            {
                "benchmark": "model_quality",
                "config": vars(args),
                "generate_seconds": round(gen_s, 1),
                "train_seconds_median": round(
                    statistics.median(r["train_seconds"] for r in runs), 1
                ),
                "runs": runs,
                **{k: round(v, 4) for k, v in median.items()},
                "targets": {"lesion_dice": 0.85, "case_macro_f1": 0.90},
                "meets_targets": median["lesion_dice"] >= 0.85 and median["case_macro_f1"] >= 0.90,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
