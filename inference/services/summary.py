"""Headline numbers of per-case evaluation rows, each with the number of cases it rests on
and a bootstrap 95 % interval (percentile method over cases), for the review pages and the
promotion comparison."""

from __future__ import annotations

from typing import Any

import numpy as np

from inference.ml import metrics


def _interval(values: list[float], rng: np.random.Generator) -> list[float] | None:
    data = np.asarray(values, dtype=np.float64)
    interval = metrics.bootstrap_interval(lambda idx: float(data[idx].mean()), len(data), rng=rng)
    return None if interval is None else [round(v, 4) for v in interval]


def _macro_f1(pairs: list[tuple[str, str | None]], names: list[str]) -> float | None:
    if not pairs:
        return None
    report = metrics.classification_report(
        [t for t, _p in pairs], [p or "" for _t, p in pairs], names
    )
    return round(float(report.macro_f1), 4)


def _f1_interval(
    pairs: list[tuple[str, str | None]], names: list[str], rng: np.random.Generator
) -> list[float] | None:
    interval = metrics.bootstrap_interval(
        lambda idx: _macro_f1([pairs[i] for i in idx], names) or 0.0, len(pairs), rng=rng
    )
    return None if interval is None else [round(v, 4) for v in interval]


def summary_of(rows: list[dict[str, Any]], names: list[str], *, seed: int = 0) -> dict[str, Any]:
    """Headline numbers of evaluation rows: value, interval and the number of cases each
    rests on."""
    rng = np.random.default_rng(seed)
    done = [r for r in rows if r.get("status") == "done"]
    dice = [float(r["lesion_dice"]) for r in done]
    f1 = [float(r["detection"]["f1"]) for r in done]
    pairs = [(str(r["etiology"]), r.get("predicted")) for r in done if r.get("etiology")]
    return {
        "n": len(done),
        "failed": len(rows) - len(done),
        "dice": {
            "value": round(float(np.mean(dice)), 4) if dice else None,
            "interval": _interval(dice, rng),
            "n": len(dice),
        },
        "lesion_f1": {
            "value": round(float(np.mean(f1)), 4) if f1 else None,
            "interval": _interval(f1, rng),
            "n": len(f1),
        },
        "macro_f1": {
            "value": _macro_f1(pairs, names),
            "interval": _f1_interval(pairs, names, rng),
            "n": len(pairs),
        },
    }
