"""The phantoms' work-up: valid by the REST contract, prevalences a neurologist recognises."""

from __future__ import annotations

import numpy as np

from cases.phantoms import generate_case
from cases.phantoms.workup import HIDDEN_SHARE, hidden_mechanism, phantom_workup
from etiology.reasoning.workup import validate_workup


def _share(rows: list[dict], key: str) -> float:  # type: ignore[type-arg]
    return float(np.mean([bool(r[key]) for r in rows]))


def test_prevalences_and_validity() -> None:
    rng = np.random.default_rng(0)
    by = {
        e: [phantom_workup(e, rng) for _ in range(400)]
        for e in ("cardioembolic", "atherothrombotic", "lacunar", "cryptogenic", "other")
    }
    for rows in by.values():
        for row in rows:
            clean, errors = validate_workup(row)
            assert not errors and clean == row
    assert _share(by["cardioembolic"], "atrial_fibrillation") > 0.6
    assert 0.0 < _share(by["atherothrombotic"], "atrial_fibrillation") < 0.25
    assert _share(by["atherothrombotic"], "stenosis_50") > 0.7
    assert _share(by["lacunar"], "stenosis_50") < 0.15
    assert _share(by["lacunar"], "lacunar_syndrome") > 0.6
    assert _share(by["cryptogenic"], "atrial_fibrillation") == 0.0
    assert _share(by["cryptogenic"], "stenosis_50") == 0.0
    complete = [r for r in by["cryptogenic"] if r["vessel_imaging"] and r["cardiac_workup"]]
    assert 0.6 < len(complete) / 400 < 0.95  # some are undetermined by incomplete evaluation
    assert _share(by["other"], "other_cause") > 0.7
    ages = {e: np.mean([r["age"] for r in rows]) for e, rows in by.items()}
    assert ages["other"] < ages["lacunar"] < ages["cardioembolic"]


def test_hidden_mechanism_of_cryptogenic_cases() -> None:
    rng = np.random.default_rng(1)
    hidden = [hidden_mechanism("cryptogenic", rng) for _ in range(1000)]
    assert abs(np.mean([h == "cardioembolic" for h in hidden]) - HIDDEN_SHARE) < 0.05
    assert all(hidden_mechanism("lacunar", rng) is None for _ in range(50))
    cases = [generate_case(etiology="cryptogenic", seed=s, shape=(8, 48, 48)) for s in range(12)]
    with_hidden = [c for c in cases if c.hidden_mechanism]
    assert with_hidden and all(c.etiology == "cryptogenic" for c in with_hidden)
    assert all(c.workup["atrial_fibrillation"] is not True for c in cases)
