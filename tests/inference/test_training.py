"""Training runs end to end through the task queue (django-q2 sync mode), datasets, registry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import torch
from django.utils import timezone

from annotation.models import Annotation
from cases import storage
from inference.models import DatasetItem, JobStatus, ModelVersion, TrainingRun
from inference.services import (
    dataset_snapshot_create,
    training_run_start,
    training_runs_reap_stale,
)
from strokeaid_site.errors import ApplicationError
from tests.inference.conftest import TINY_PARAMS

ETIOLOGIES = ["cardioembolic", "atherothrombotic", "lacunar", "cardioembolic", "atherothrombotic"]


def _weights_files() -> list[str]:
    path = storage.local_path("models")
    if path is None or not path.exists():
        return []
    return sorted(p.name for p in path.glob("*.pt"))


@pytest.mark.slow
def test_training_run_trains_registers_and_reports(
    make_phantom_case: Any,
    data_manager: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    cases = [make_phantom_case(e) for e in ETIOLOGIES]
    client = api_client_for(data_manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/training-runs/",
            {"epochs": 1, "cases": None, "activate": True, **TINY_PARAMS},
            format="json",
        )
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]

    body = client.get(f"/api/training-runs/{run_id}/").json()
    assert body["status"] == "done", body["error"]
    assert body["progress"] == 1.0
    assert body["error"] is None
    assert len(body["history"]) == 1
    assert body["history"][0]["train_loss"] > 0
    model = ModelVersion.objects.get(pk=body["model"])
    # One epoch of a tiny network: the sanity rule decides whether it may go live, and an
    # unusable model is registered but never activated.
    assert model.is_active == model.usable and not model.is_demo
    assert body["metrics"]["unusable_reason"] == (model.unusable_reason or None)
    assert body["metrics"]["steps"] >= 1 and body["metrics"]["undertrained"] is False
    assert model.spec["encoder_depth"] == 3
    assert model.hyperparameters["epochs"] == 1
    assert model.code_version
    assert storage.exists(model.weights_key)
    assert storage.sha256_of(model.weights_key) == model.weights_sha256
    # The split is by case and covers every case once.
    items = DatasetItem.objects.filter(snapshot=model.dataset)
    assert sorted(i.case_id for i in items) == sorted(c.pk for c in cases)
    assert {i.split for i in items} <= {"train", "val", "test"}
    assert all(i.revisions[0]["state"] == "approved" for i in items)
    listed = client.get("/api/models/").json()["results"]
    assert listed[0]["id"] == model.pk and listed[0]["is_active"] == model.usable


def test_default_dataset_takes_only_confirmed_cases_with_approved_masks(
    make_phantom_case: Any, data_manager: Any
) -> None:
    approved = make_phantom_case("cardioembolic")
    draft = make_phantom_case("lacunar", state=Annotation.State.DRAFT)
    snapshot = dataset_snapshot_create(user=data_manager)
    assert [i.case_id for i in snapshot.items.all()] == [approved.pk]
    # Explicit ids: the newest revision whatever its state.
    explicit = dataset_snapshot_create(user=data_manager, case_ids=[draft.pk, approved.pk])
    states = {i.case_id: i.revisions[0]["state"] for i in explicit.items.all()}
    assert states == {draft.pk: "draft", approved.pk: "approved"}
    only_ce = dataset_snapshot_create(user=data_manager, filters={"etiology": ["cardioembolic"]})
    assert only_ce.items.count() == 1
    with pytest.raises(ApplicationError):
        # The only lacunar case has a draft mask: nothing approved to train on.
        dataset_snapshot_create(user=data_manager, filters={"etiology": "lacunar"})


def test_split_is_by_case_deterministic_and_stratified(
    make_phantom_case: Any, data_manager: Any
) -> None:
    for i in range(8):
        make_phantom_case("cardioembolic" if i % 2 else "lacunar", mask=True)
    a = dataset_snapshot_create(user=data_manager, seed=3)
    b = dataset_snapshot_create(user=data_manager, seed=3)
    split_a = {i.case_id: i.split for i in a.items.all()}
    split_b = {i.case_id: i.split for i in b.items.all()}
    assert split_a == split_b
    for etiology in ("cardioembolic", "lacunar"):
        splits = [i.split for i in a.items.filter(etiology__name=etiology)]
        assert splits.count("train") >= 2


def test_clinician_cannot_start_training(clinician: Any, api_client_for: Any) -> None:
    response = api_client_for(clinician).post("/api/training-runs/", {"epochs": 1}, format="json")
    assert response.status_code == 403
    assert set(response.json()) == {"message", "extra"}
    assert not TrainingRun.objects.exists()


def test_duplicate_start_returns_the_running_run(
    make_phantom_case: Any, data_manager: Any, api_client_for: Any
) -> None:
    make_phantom_case("cardioembolic")
    first, created = training_run_start(user=data_manager, epochs=1, enqueue=False)
    assert created
    response = api_client_for(data_manager).post(
        "/api/training-runs/", {"epochs": 3}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["id"] == first.pk
    assert TrainingRun.objects.count() == 1


def test_unknown_hyper_parameter_is_rejected(
    make_phantom_case: Any, data_manager: Any, api_client_for: Any
) -> None:
    make_phantom_case("cardioembolic")
    response = api_client_for(data_manager).post(
        "/api/training-runs/", {"epochs": 1, "learning_speed": 3}, format="json"
    )
    assert response.status_code == 400
    assert "learning_speed" in response.json()["message"]


def test_hyper_parameter_outside_its_choices_is_rejected(
    make_phantom_case: Any, data_manager: Any, api_client_for: Any
) -> None:
    make_phantom_case("cardioembolic")
    response = api_client_for(data_manager).post(
        "/api/training-runs/", {"epochs": 1, "storage_dtype": "int8"}, format="json"
    )
    assert response.status_code == 400
    assert "storage_dtype must be one of float32, float16" in response.json()["message"]
    assert not TrainingRun.objects.exists()


def test_no_training_data_is_a_clear_error(data_manager: Any, api_client_for: Any) -> None:
    response = api_client_for(data_manager).post(
        "/api/training-runs/", {"epochs": 1}, format="json"
    )
    assert response.status_code == 400
    assert "approved masks" in response.json()["message"]


@pytest.mark.slow
def test_worker_error_mid_training_leaves_no_model(
    make_phantom_case: Any,
    data_manager: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    for e in ETIOLOGIES:
        make_phantom_case(e)
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def failing_step(self: Any, *args: Any, **kwargs: Any) -> Any:
        # A device failure in the middle of the run (after a first good step).
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", failing_step)
    before = _weights_files()
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = training_run_start(user=data_manager, epochs=3, params=TINY_PARAMS)
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "illegal memory access" in run.error
    assert not ModelVersion.objects.exists()
    assert _weights_files() == before


def test_reaper_marks_silent_running_runs_interrupted(
    make_phantom_case: Any, data_manager: Any
) -> None:
    make_phantom_case("cardioembolic")
    run, _ = training_run_start(user=data_manager, epochs=1, enqueue=False)
    TrainingRun.objects.filter(pk=run.pk).update(
        status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=2)
    )
    assert training_runs_reap_stale() == [run.pk]
    run.refresh_from_db()
    assert run.status == JobStatus.INTERRUPTED
    # A fresh run may start now.
    second, created = training_run_start(user=data_manager, epochs=1, enqueue=False)
    assert created and second.pk != run.pk


def test_activate_switches_the_single_active_model(
    registered_model: Any, data_manager: Any, clinician: Any, api_client_for: Any
) -> None:
    first = registered_model(activate=True, name="first")
    second = registered_model(activate=False, name="second")
    assert api_client_for(clinician).post(f"/api/models/{second.pk}/activate/").status_code == 403
    response = api_client_for(data_manager).post(f"/api/models/{second.pk}/activate/")
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    assert list(ModelVersion.objects.filter(is_active=True)) == [second]
    first.refresh_from_db()
    assert not first.is_active


def test_list_endpoints_do_not_grow_queries(
    registered_model: Any,
    make_phantom_case: Any,
    data_manager: Any,
    api_client_for: Any,
    django_assert_max_num_queries: Any,
) -> None:
    client = api_client_for(data_manager)
    make_phantom_case("cardioembolic")
    for i in range(3):
        registered_model(activate=i == 0, name=f"m{i}")
        run, _ = training_run_start(user=data_manager, epochs=1, enqueue=False)
        TrainingRun.objects.filter(pk=run.pk).update(status=JobStatus.FAILED)
    client.get("/api/models/")  # warm the token/user caches
    with django_assert_max_num_queries(4):
        assert client.get("/api/models/").json()["count"] == 3
    with django_assert_max_num_queries(5):
        assert client.get("/api/training-runs/").json()["count"] == 3


def test_models_page_lists_versions(registered_model: Any, data_manager: Any, client: Any) -> None:
    registered_model(name="page-model")
    client.force_login(data_manager)
    response = client.get("/models/")
    assert response.status_code == 200
    assert b"page-model" in response.content
    assert b"chart.umd.min.js" in response.content


def test_an_unusable_model_is_registered_but_the_gate_refuses_it(
    registered_model: Any, data_manager: Any, api_client_for: Any, client: Any
) -> None:
    active = registered_model(activate=True, name="good")
    broken = registered_model(activate=True, name="whole-head", unusable_reason="lesion_everywhere")
    # Registered (its page can say why) but never activated, even when asked to.
    broken.refresh_from_db()
    assert not broken.usable and not broken.is_active
    assert list(ModelVersion.objects.filter(is_active=True)) == [active]
    response = api_client_for(data_manager).post(f"/api/models/{broken.pk}/activate/")
    assert response.status_code == 409
    assert "implausible share of the brain" in response.json()["message"]
    listed = {
        m["id"]: m for m in api_client_for(data_manager).get("/api/models/").json()["results"]
    }
    assert listed[broken.pk]["usable"] is False
    assert listed[broken.pk]["unusable_reason"] == "lesion_everywhere"
    client.force_login(data_manager)
    page = client.get("/models/").content.decode()
    assert "model-unusable" in page and "implausible share of the brain" in page
    assert list(ModelVersion.objects.filter(is_active=True)) == [active]


def test_unconfirmed_masks_join_training_without_an_etiology(
    make_phantom_case: Any, data_manager: Any
) -> None:
    from cases.models import Case

    confirmed = [make_phantom_case(e) for e in ("cardioembolic", "lacunar", "cardioembolic")]
    unconfirmed = make_phantom_case("lacunar")
    Case.objects.filter(pk=unconfirmed.pk).update(confirmed=False)
    plain = dataset_snapshot_create(user=data_manager)
    assert plain.items.count() == 3
    snapshot = dataset_snapshot_create(
        user=data_manager, filters={"include_unconfirmed": True}, fractions=(0.34, 0.33, 0.33)
    )
    items = {item.case_id: item for item in snapshot.items.all()}
    assert set(items) == {c.pk for c in confirmed} | {unconfirmed.pk}
    assert items[unconfirmed.pk].split == "train" and items[unconfirmed.pk].etiology is None
    assert snapshot.counts["unconfirmed"] == 1
    from inference.services.dataset import dataset_case_arrays

    arrays = {a.case_id: a for a in dataset_case_arrays(snapshot=snapshot, split="train")}
    assert arrays[str(unconfirmed.pk)].etiology_known is False
    assert all(a.etiology_known for k, a in arrays.items() if k != str(unconfirmed.pk))


def test_the_training_log_reads_in_the_language_of_who_started_it(
    make_phantom_case: Any, data_manager: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from accounts.services import user_set_language

    make_phantom_case("cardioembolic")
    user_set_language(user=data_manager, language="ru")
    with django_capture_on_commit_callbacks(execute=True):
        run, _ = training_run_start(user=data_manager, epochs=1, params=TINY_PARAMS)
    run.refresh_from_db()
    assert run.status == JobStatus.DONE, run.error
    assert "Зарегистрирована модель" in run.log
    assert "Registered model" not in run.log
