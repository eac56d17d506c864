"""Learning curve on small data: default training on 12, 24, 48 and 96 cases.

The cases come from the project's phantom generator in ACQUISITION VARIANTS the defaults
were not tuned on (``cases.phantoms.acquisition_variant``: 128 or 256 matrices with 0.9-2
mm pixels, 16-30 slices, ADC in mm^2/s, 10^-3 or 10^-6 mm^2/s, scanner intensities scaled
by 10^-2..10^2, 0.6-1.8 x the noise). Training, validation and the held-out test set (>= 40
cases, another seed) all draw their own variants. Each size trains with the platform's
default ``TrainConfig`` (the web form's 10 epochs; the step budget decides) and the split a
run uses (85 % train, 15 % validation), then reports held-out lesion Dice (pooled), case
macro-F1 of the segmentation vote, the share of test predictions flagged implausible, the
steps taken and the CPU seconds of the run. ``--ablate-prior`` repeats each size without
the ADC-core prior channel, ``--unlabelled N`` adds N masks without a confirmed etiology
(the semi-supervised path) to the training set.

    python bench/small_data.py [--sizes 12,24,48,96] [--test 40] [--device cpu|cuda]
                               [--ablate-prior | --without-prior] [--unlabelled N]
                               [--max-minutes 15] [--out file.json]

Targets on a 2-core CPU: with 24 cases, lesion Dice >= 0.85 within 15 minutes of training.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases.phantoms import DEFAULT_LABEL_VALUES, ETIOLOGIES, acquisition_variant, generate_case
from inference.ml.data import CaseArrays
from inference.ml.metrics import OverlapCounts, classification_report, overlap_counts
from inference.ml.predictor import Predictor
from inference.ml.trainer import TrainConfig, spec_from_config, train

#: The web form's default epochs (inference.views.DEFAULT_EPOCHS).
DEFAULT_EPOCHS = 10
#: The four TOAST-like classes a clinic labels most (the fifth, "other", is rare).
CLASSES = ETIOLOGIES[:4]
TARGETS = {"cases": 24, "lesion_dice": 0.85, "minutes": 15.0}


def variant_cases(n: int, seed: int, *, etiology: bool = True) -> list[CaseArrays]:
    """``n`` phantom cases in random acquisition variants, cycling through the etiologies."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        name = CLASSES[i % len(CLASSES)]
        ph = generate_case(etiology=name, seed=seed * 100_000 + i, **acquisition_variant(rng))
        out.append(
            CaseArrays(
                case_id=f"{seed}-{i}",
                volumes=ph.images,
                mask=ph.mask,
                spacing=ph.spacing,
                etiology=ph.label_value if etiology else None,
                etiology_known=etiology,
            )
        )
    return out


def held_out(predictor: Predictor, cases: list[CaseArrays], labels: list[int]) -> dict[str, Any]:
    """Pooled lesion Dice, case macro-F1 of the vote and flagged predictions on ``cases``."""
    fg = OverlapCounts(0, 0, 0)
    truths: list[int] = []
    preds: list[int | None] = []
    flagged = 0
    for case in cases:
        assert case.mask is not None
        out = predictor.predict(case.volumes, case.spacing)
        fg = fg + overlap_counts(out.label_volume != 0, case.mask != 0, [1])[1]
        flagged += bool(out.flags)
        truths.append(int(case.etiology or 0))
        preds.append(out.etiology)
    report = classification_report(truths, preds, labels)
    return {
        "lesion_dice": round(fg.dice, 4),
        "case_macro_f1": round(report.macro_f1, 4),
        "case_accuracy": round(report.accuracy, 4),
        "flagged_implausible": flagged,
    }


def run_size(
    n: int, args: argparse.Namespace, test: list[CaseArrays], *, prior: bool
) -> dict[str, Any]:
    cases = variant_cases(n, args.seed)
    n_val = max(2, round(0.15 * n))
    val, train_cases = cases[:n_val], cases[n_val:]
    if args.unlabelled:
        train_cases += variant_cases(args.unlabelled, args.seed + 50, etiology=False)
    labels = [DEFAULT_LABEL_VALUES[c] for c in CLASSES]
    config = TrainConfig(
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        max_minutes=args.max_minutes,
        prior_channels=("adc_core",) if prior else (),
        **({"min_steps": args.min_steps} if args.min_steps is not None else {}),
    )
    spec = spec_from_config(config, label_values=labels, label_names=list(CLASSES))
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    result = train(train_cases=train_cases, val_cases=val, spec=spec, config=config)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    predictor = Predictor(result.model, spec, args.device)
    scores = held_out(predictor, test, labels)
    return {
        "cases": n,
        "train": len(train_cases),
        "val": len(val),
        "prior": prior,
        **scores,
        "val_lesion_dice": round(result.best_metrics.get("lesion_dice", float("nan")), 4),
        "steps": result.steps,
        "planned_steps": result.planned_steps,
        "undertrained": result.undertrained,
        "best_epoch": result.best_epoch,
        "train_minutes": round(wall / 60.0, 2),
        "cpu_seconds": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="12,24,48,96")
    parser.add_argument("--test", type=int, default=40)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--test-seed", type=int, default=97)
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--min-steps", type=int, default=None)
    parser.add_argument("--max-minutes", type=float, default=15.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ablate-prior", action="store_true")
    parser.add_argument(
        "--without-prior", action="store_true", help="only the runs without the ADC-core prior"
    )
    parser.add_argument("--unlabelled", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    test = variant_cases(args.test, args.test_seed)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        priors = (False,) if args.without_prior else (True, False) if args.ablate_prior else (True,)
        for prior in priors:
            row = run_size(n, args, test, prior=prior)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    target_row = next((r for r in rows if r["cases"] == TARGETS["cases"] and r["prior"]), None)
    report = {
        "benchmark": "small_data",
        "device": args.device,
        "test_cases": len(test),
        "defaults": {"epochs": args.epochs, "min_steps": TrainConfig().min_steps},
        "rows": rows,
        "targets": TARGETS,
        "target_met": (
            target_row is not None
            and target_row["lesion_dice"] >= TARGETS["lesion_dice"]
            and target_row["train_minutes"] <= TARGETS["minutes"]
        ),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
