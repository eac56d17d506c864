"""TOAST rules, table-driven over every branch, and the consistency checks."""

from __future__ import annotations

from typing import Any

import pytest

from etiology.reasoning.checks import case_checks
from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.toast import pattern_suggests, toast_rules
from etiology.reasoning.workup import empty_workup, validate_workup

COMPLETE = {"vessel_imaging": True, "cardiac_workup": True}
LACUNE = LesionPattern(count=1, volume_ml=0.4, largest_diameter_mm=9.0, deep_small=True)
TERRITORIAL = LesionPattern(
    count=1,
    volume_ml=30.0,
    largest_diameter_mm=55.0,
    cortical=True,
    territories=["MCA"],
    multi_territory=False,
    anterior=True,
    posterior=False,
    insula=False,
    border_zone=False,
)
EMBOLIC = LesionPattern(
    count=4,
    volume_ml=6.0,
    largest_diameter_mm=18.0,
    cortical=True,
    bilateral=True,
    sides=["left", "right"],
    territories=["MCA", "PCA"],
    multi_territory=True,
    anterior=True,
    posterior=True,
    insula=True,
    border_zone=False,
)
BORDER = LesionPattern(
    count=3,
    volume_ml=2.0,
    largest_diameter_mm=12.0,
    territories=["MCA"],
    multi_territory=False,
    anterior=True,
    posterior=False,
    insula=False,
    border_zone=True,
)


def _workup(**values: Any) -> dict[str, Any]:
    return {**empty_workup(), **values}


@pytest.mark.parametrize(
    ("pattern", "workup", "etiology", "code"),
    [
        (
            EMBOLIC,
            _workup(atrial_fibrillation=True, **COMPLETE),
            "cardioembolic",
            "single_cardioembolic",
        ),
        (TERRITORIAL, _workup(cardiac_source=True), "cardioembolic", "single_cardioembolic"),
        (
            TERRITORIAL,
            _workup(stenosis_50=True, **COMPLETE),
            "atherothrombotic",
            "single_atherothrombotic",
        ),
        (BORDER, _workup(stenosis_50=True), "atherothrombotic", "single_atherothrombotic"),
        (LACUNE, _workup(lacunar_syndrome=True, **COMPLETE), "lacunar", "single_lacunar"),
        (LACUNE, _workup(**COMPLETE), "lacunar", "single_lacunar"),  # syndrome not recorded
        (TERRITORIAL, _workup(other_cause="dissection", **COMPLETE), "other", "single_other"),
        # Two causes compete -> undetermined.
        (
            TERRITORIAL,
            _workup(atrial_fibrillation=True, stenosis_50=True),
            "cryptogenic",
            "two_causes",
        ),
        (
            LACUNE,
            _workup(lacunar_syndrome=True, atrial_fibrillation=True),
            "cryptogenic",
            "two_causes",
        ),
        (
            EMBOLIC,
            _workup(other_cause="vasculitis", cardiac_source=True),
            "cryptogenic",
            "two_causes",
        ),
        # A small deep infarct without the syndrome is no lacune by TOAST.
        (LACUNE, _workup(lacunar_syndrome=False, **COMPLETE), "cryptogenic", "negative_workup"),
        # No cause: incomplete work-up vs complete and negative.
        (EMBOLIC, _workup(vessel_imaging=True), "cryptogenic", "incomplete_workup"),
        (TERRITORIAL, _workup(), "cryptogenic", "incomplete_workup"),
        (TERRITORIAL, _workup(**COMPLETE), "cryptogenic", "negative_workup"),
        (None, _workup(**COMPLETE), "cryptogenic", "negative_workup"),
    ],
)
def test_toast_rules(
    pattern: LesionPattern | None, workup: dict[str, Any], etiology: str, code: str
) -> None:
    result = toast_rules(pattern, workup)
    assert (result.etiology, result.code) == (etiology, code)
    assert result.reasons


def test_gaps_name_the_work_up_that_would_decide() -> None:
    result = toast_rules(EMBOLIC, _workup(vessel_imaging=True))
    assert result.suggests == "cardioembolic"
    assert [m for m, _ in result.gaps] == ["no cardiac monitoring or echocardiography recorded"]
    lacune = toast_rules(LACUNE, _workup())
    assert "no lacunar syndrome recorded" in [m for m, _ in lacune.gaps]


@pytest.mark.parametrize(
    ("pattern", "suggests"),
    [
        (LACUNE, "lacunar"),
        (EMBOLIC, "cardioembolic"),
        (BORDER, "atherothrombotic"),
        (TERRITORIAL, "atherothrombotic"),
        (LesionPattern(), None),
        (None, None),
    ],
)
def test_pattern_alone_suggests(pattern: LesionPattern | None, suggests: str | None) -> None:
    assert pattern_suggests(pattern) == suggests


@pytest.mark.parametrize(
    ("etiology", "workup", "pattern", "labels", "codes"),
    [
        (
            "lacunar",
            _workup(**COMPLETE, lacunar_syndrome=True),
            TERRITORIAL,
            ["lacunar"],
            {"lacunar_cortical", "lacunar_large"},
        ),
        ("lacunar", _workup(lacunar_syndrome=False), LACUNE, ["lacunar"], {"lacunar_no_syndrome"}),
        ("atherothrombotic", _workup(), TERRITORIAL, ["atherothrombotic"], {"athero_no_stenosis"}),
        (
            "cardioembolic",
            _workup(atrial_fibrillation=False, cardiac_source=False),
            EMBOLIC,
            ["cardioembolic"],
            {"cardio_no_source"},
        ),
        (
            "cryptogenic",
            _workup(vessel_imaging=True),
            EMBOLIC,
            ["cryptogenic"],
            {"cryptogenic_incomplete"},
        ),
        (
            "cryptogenic",
            _workup(atrial_fibrillation=True, **COMPLETE),
            EMBOLIC,
            [],
            {"cryptogenic_with_cause"},
        ),
        (
            "cardioembolic",
            _workup(atrial_fibrillation=True),
            EMBOLIC,
            ["cardioembolic", "lacunar"],
            {"mask_labels_differ"},
        ),
        (
            "cardioembolic",
            _workup(atrial_fibrillation=True, **COMPLETE),
            EMBOLIC,
            ["cardioembolic"],
            set(),
        ),
        (None, _workup(), EMBOLIC, ["lacunar"], set()),
    ],
)
def test_consistency_checks(
    etiology: str | None,
    workup: dict[str, Any],
    pattern: LesionPattern,
    labels: list[str],
    codes: set[str],
) -> None:
    checks = case_checks(etiology=etiology, workup=workup, pattern=pattern, mask_labels=labels)
    assert {c.code for c in checks} == codes
    severities = {c.code: c.severity for c in checks}
    if "cardio_no_source" in severities:
        assert severities["cardio_no_source"] == "error"  # the work-up says there is none


@pytest.mark.parametrize(
    ("data", "bad"),
    [
        ({"atrial_fibrillation": "true"}, "atrial_fibrillation"),
        ({"age": 130}, "age"),
        ({"age": True}, "age"),
        ({"nihss": 4.5}, "nihss"),
        ({"sex": "X"}, "sex"),
        ({"other_cause": 3}, "other_cause"),
        ({"other_cause": "x" * 201}, "other_cause"),
        ({"smoker": True}, "smoker"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_workup_validation_refuses(data: Any, bad: str) -> None:
    _, errors = validate_workup(data)
    assert bad in errors


def test_workup_validation_keeps_nulls_and_strips_text() -> None:
    clean, errors = validate_workup(
        {"atrial_fibrillation": False, "other_cause": "  dissection ", "age": 71}
    )
    assert not errors
    assert clean["atrial_fibrillation"] is False and clean["other_cause"] == "dissection"
    assert clean["stenosis_50"] is None and clean["age"] == 71
