"""The train / evaluate commands and the demo model, for real on tiny phantoms."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from inference.models import ModelVersion
from inference.services import demo_model_ensure
from tests.inference.conftest import TINY_PARAMS

ETIOLOGIES = ["cardioembolic", "atherothrombotic", "lacunar"] * 2


@pytest.mark.slow
def test_train_then_evaluate_commands(make_phantom_case: Any) -> None:
    for e in ETIOLOGIES:
        make_phantom_case(e)
    out = io.StringIO()
    call_command(
        "train", "--epochs", "1", "--activate", "--params", json.dumps(TINY_PARAMS), stdout=out
    )
    model = ModelVersion.objects.get()
    # One epoch of a tiny network: active only if the sanity rule lets it go live.
    assert model.is_active == model.usable
    assert "registered model" in out.getvalue()
    assert ("[unusable: " in out.getvalue()) == (not model.usable)
    out = io.StringIO()
    call_command("evaluate", "--model", str(model.pk), "--split", "train", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["split"] == "train" and result["cases"] >= 1
    assert 0.0 <= result["lesion_f1"] <= 1.0
    assert set(result["dice"]) <= {
        "atherothrombotic",
        "cardioembolic",
        "cryptogenic",
        "lacunar",
        "other",
    }


@pytest.mark.slow
def test_demo_model_is_trained_labelled_and_activated_once(make_phantom_case: Any) -> None:
    for e in ETIOLOGIES:
        make_phantom_case(e)
    model = demo_model_ensure(epochs=1)
    assert model is not None and model.is_demo and model.is_active == model.usable
    assert "demo" in model.name
    assert demo_model_ensure(epochs=1) == model  # idempotent: never trains twice
    assert ModelVersion.objects.count() == 1


def test_demo_model_without_cases_is_none(db: Any) -> None:
    assert demo_model_ensure() is None
