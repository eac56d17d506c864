"""One job per request under concurrency: ten identical requests released together create one
job, on whichever database the suite runs (PostgreSQL in CI, SQLite by default)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from core.jobs import job_request
from inference.models import ExportJob, ModelVersion, PredictionJob, TrainingRun

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

N = 10


def _post_all(run_together: Any, client_for: Any, user: Any, url: str, body: Any) -> list[Any]:
    clients = [client_for(user) for _ in range(N)]
    responses = run_together(N, lambda i: clients[i].post(url, body, format="json"))
    errors = [r for r in responses if isinstance(r, Exception)]
    assert not errors, errors
    codes = sorted({r.status_code for r in responses})
    assert set(codes) <= {200, 202}, [r.content[:200] for r in responses]
    return responses


def test_ten_parallel_predictions_make_one_job(
    run_together: Any,
    queue_only: None,
    api_client_for: Any,
    neurologist: Any,
    make_phantom_case: Any,
    registered_model: Any,
) -> None:
    case = make_phantom_case("lacunar", seed=3)
    registered_model()
    url = f"/api/cases/{case.pk}/predictions/"
    responses = _post_all(run_together, api_client_for, neurologist, url, None)
    assert PredictionJob.objects.filter(case=case).count() == 1
    assert len({r.json()["id"] for r in responses}) == 1


def test_ten_parallel_training_requests_make_one_run(
    run_together: Any,
    queue_only: None,
    api_client_for: Any,
    data_manager: Any,
    make_phantom_case: Any,
) -> None:
    for i, etiology in enumerate(["lacunar", "cardioembolic", "atherothrombotic"] * 2):
        make_phantom_case(etiology, seed=10 + i)
    responses = _post_all(
        run_together, api_client_for, data_manager, "/api/training-runs/", {"epochs": 1}
    )
    assert TrainingRun.objects.count() == 1
    assert ModelVersion.objects.count() == 0
    assert len({r.json()["id"] for r in responses}) == 1


def test_ten_parallel_identical_exports_make_one_job(
    run_together: Any,
    queue_only: None,
    api_client_for: Any,
    data_manager: Any,
    make_phantom_case: Any,
) -> None:
    make_phantom_case("lacunar", seed=21)
    body = {"format": "nnunet"}
    responses = _post_all(run_together, api_client_for, data_manager, "/api/exports/", body)
    assert ExportJob.objects.count() == 1
    assert len({r.json()["id"] for r in responses}) == 1
    # A different request is another target: a second job.
    other = api_client_for(data_manager).post(
        "/api/exports/", {"format": "dicom-seg"}, format="json"
    )
    assert other.status_code == 202 and ExportJob.objects.count() == 2


def test_the_database_refuses_a_second_active_job_of_one_target(
    make_phantom_case: Any, registered_model: Any, neurologist: Any
) -> None:
    """The constraint itself, without the helper: what makes the de-duplication hold."""
    case = make_phantom_case("lacunar", seed=5)
    model = registered_model()
    fields = {"case": case, "model": model, "created_by": neurologist, "target": "t"}
    first = PredictionJob.objects.create(**fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        PredictionJob.objects.create(**fields)
    # Finished jobs do not count: the same target may be requested again.
    first.status = "done"
    first.save()
    PredictionJob.objects.create(**fields)


def test_job_request_returns_the_active_job_and_queues_only_new_ones(
    make_phantom_case: Any, registered_model: Any, neurologist: Any, queue_only: None
) -> None:
    case = make_phantom_case("lacunar", seed=6)
    model = registered_model()
    calls = []

    def create() -> PredictionJob:
        calls.append(1)
        return PredictionJob.objects.create(
            case=case, model=model, created_by=neurologist, target="x"
        )

    job, created = job_request(
        model=PredictionJob, target="x", create=create, task="math.floor", group="t"
    )
    again, created_again = job_request(
        model=PredictionJob, target="x", create=create, task="math.floor", group="t"
    )
    assert created and not created_again and again.pk == job.pk and len(calls) == 1
    job.refresh_from_db()
    assert job.task_id  # queued after commit, its task id recorded on the row
    with pytest.raises(ValueError, match="target"):
        job_request(model=PredictionJob, target="", create=create, task=None, group="t")
