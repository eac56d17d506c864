"""The learned case-level model: leak-free fit with every training run, its test-split
metrics beside the vote and the rules, and its answer as the prediction's headline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from etiology.models import Workup
from etiology.reasoning.case_model import (
    CaseModel,
    bootstrap_f1,
    case_features,
    fit_case_model,
    macro_f1,
)
from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.study import study_pattern
from inference.models import ModelVersion
from inference.services.case_model import case_model_load
from inference.services.dataset import dataset_case_arrays
from inference.services.prediction import predictor_for
from tests.inference.conftest import TINY_PARAMS

WORKUP = {
    "cardioembolic": {"atrial_fibrillation": True, "cardiac_workup": True, "vessel_imaging": True},
    "atherothrombotic": {"stenosis_50": True, "cardiac_workup": True, "vessel_imaging": True},
    "lacunar": {"lacunar_syndrome": True, "cardiac_workup": True, "vessel_imaging": True},
}


def test_pure_fit_answers_and_explains() -> None:
    embolic = LesionPattern(count=4, bilateral=True, cortical=True, largest_diameter_mm=15)
    lacune = LesionPattern(count=1, deep_small=True, largest_diameter_mm=8)
    rows = [case_features(embolic, {"atrial_fibrillation": True})] * 6 + [
        case_features(lacune, {"lacunar_syndrome": True})
    ] * 6
    labels = ["cardioembolic"] * 6 + ["lacunar"] * 6
    model = fit_case_model(rows, labels, uses_workup=True, case_ids=[str(i) for i in range(12)])
    answer = model.answer(case_features(embolic, {"atrial_fibrillation": True}))
    assert answer["etiology"] == "cardioembolic" and answer["confidence"] > 0.8
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-9
    features = [e["feature"] for e in answer["explanation"]]
    assert features and {"bilateral", "workup_atrial_fibrillation", "deep_small"} & set(features)
    again = CaseModel.from_bytes(model.to_bytes())
    assert again.answer(rows[0]) == model.answer(rows[0])
    with pytest.raises(ValueError):
        fit_case_model(rows[:6], labels[:6], uses_workup=True)


def test_macro_f1_and_bootstrap_interval() -> None:
    truth = ["a", "a", "b", "b"]
    assert macro_f1(truth, ["a", "a", "b", "b"], ["a", "b"]) == 1.0
    assert macro_f1(truth, ["a", "b", None, "b"], ["a", "b"]) == pytest.approx((2 / 3 + 0.5) / 2)
    scored = bootstrap_f1(truth * 10, ["a", "a", "b", "a"] * 10, ["a", "b"], rounds=200)
    assert scored["low"] <= scored["f1"] <= scored["high"] and scored["n"] == 40


@pytest.mark.slow
def test_every_run_registers_a_leak_free_case_model(
    make_phantom_case: Any,
    data_manager: Any,
    neurologist: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    etiologies = ["cardioembolic", "atherothrombotic", "lacunar"] * 4
    cases = [make_phantom_case(e, seed=40 + i) for i, e in enumerate(etiologies)]
    for case, etiology in zip(cases, etiologies, strict=True):
        Workup.objects.create(case=case, **WORKUP[etiology])
    client = api_client_for(data_manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/training-runs/",
            {"epochs": 1, "cases": None, "fractions": [0.67, 0.0, 0.33], **TINY_PARAMS},
            format="json",
        )
    run = client.get(f"/api/training-runs/{response.json()['id']}/").json()
    assert run["status"] == "done", run["error"]
    version = ModelVersion.objects.get(pk=run["model"])
    assert version.case_model_key and version.case_model["feature_source"] == "approved_masks"
    scores = version.case_model["metrics"]["macro_f1"]
    assert set(scores) >= {"segmentation_vote", "toast_rules", "combined", "combined_imaging_only"}
    assert all(s["low"] <= s["f1"] <= s["high"] for s in scores.values())
    assert version.case_model["metrics"]["test_cases"] >= 3
    # Leakage: the rows it was fitted on are the approved masks' patterns, not the U-Net's
    # predictions of the same (memorised) training cases.
    model = case_model_load(version.case_model_key, version.case_model_sha256)
    assert model is not None and model.training_rows
    train = {c.case_id: c for c in dataset_case_arrays(snapshot=version.dataset, split="train")}
    assert set(model.training_rows) == set(train)
    predictor = predictor_for(version)
    differ = 0
    for case_id, row in model.training_rows.items():
        case = train[case_id]
        from_mask = study_pattern(
            case.mask, volumes=case.volumes, spacing=case.spacing, affine_zyx=case.affine
        )[0].features()
        assert {k: row[k] for k in from_mask} == from_mask
        predicted = predictor.predict(case.volumes, case.spacing).label_volume
        from_prediction = study_pattern(
            predicted, volumes=case.volumes, spacing=case.spacing, affine_zyx=case.affine
        )[0].features()
        differ += from_prediction != from_mask
    assert differ > 0  # the test would not tell the two apart otherwise
    # The prediction's headline is the learned answer, with its explanation.
    ModelVersion.objects.filter(pk=version.pk).update(usable=True)
    version.refresh_from_db()
    from inference.services.registry import model_activate

    model_activate(user=None, model=version)
    target = cases[0]
    with django_capture_on_commit_callbacks(execute=True):
        posted = api_client_for(neurologist).post(f"/api/cases/{target.pk}/predictions/")
    body = api_client_for(neurologist).get(f"/api/predictions/{posted.json()['id']}/").json()
    assert body["status"] == "done", body["error"]
    if not (body["lesions"].get("flags")):
        combined = body["methods"]["combined"]
        assert body["etiology"] == combined["etiology"]
        assert body["probabilities"] == pytest.approx(combined["probabilities"])
        assert isinstance(combined["explanation"], list)
    assert np.isfinite(version.case_model["metrics"]["feature_gap"])


def test_model_review_page_shows_the_three_answers(
    registered_model: Any, data_manager: Any, client: Any
) -> None:
    version = registered_model()
    score = {"f1": 0.8, "low": 0.7, "high": 0.9, "n": 20, "accuracy": 0.85}
    classes = ["cardioembolic", "lacunar"]
    version.case_model = {
        "feature_source": "approved_masks",
        "metrics": {
            "test_cases": 20,
            "classes": classes,
            "feature_gap": 0.05,
            "macro_f1": {
                "segmentation_vote": {**score, "f1": 0.61},
                "toast_rules": score,
                "combined": {**score, "f1": 0.93},
                "combined_imaging_only": {**score, "f1": 0.72},
            },
            "confusion": {"combined": [[9, 1, 0], [0, 10, 0]]},
        },
    }
    version.save()
    client.force_login(data_manager)
    page = client.get(f"/models/{version.pk}/review/").content.decode()
    assert 'id="three-answers-table"' in page
    for key, f1 in (
        ("segmentation_vote", "0.610"),
        ("combined", "0.930"),
        ("combined_imaging_only", "0.720"),
    ):
        assert f'data-method="{key}"' in page and f1 in page
    assert "imaging only" in page
