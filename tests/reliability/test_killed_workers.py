"""A worker killed with SIGKILL mid-training: its run stops beating, is marked interrupted, and
the next training request starts a new run within the stale window (no half-registered model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from inference.models import ExportJob, JobStatus, ModelVersion, PredictionJob, TrainingRun
from inference.services import jobs_reap_stale_all
from tests.inference.conftest import TINY_PARAMS

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
STALE_SECONDS = 3.0


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_training_worker_unblocks_training_within_the_stale_window(
    make_phantom_case: Any, data_manager: Any, api_client_for: Any, settings: Any
) -> None:
    for i, etiology in enumerate(["lacunar", "cardioembolic", "atherothrombotic"] * 2):
        make_phantom_case(etiology, seed=40 + i)
    settings.STROKEAID = {**settings.STROKEAID, "JOB_STALE_SECONDS": STALE_SECONDS}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "strokeaid_site.settings.local",
        "DATABASE_URL": _database_url(),
        "STROKEAID_DATA_DIR": str(settings.STROKEAID["DATA_DIR"]),
        "REDIS_URL": "",
        "STROKEAID_JOB_HEARTBEAT_SECONDS": "0.5",
        "STROKEAID_DEVICE": "cpu",
    }
    params = {**TINY_PARAMS, "image_size": [64, 64]}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "train", "--epochs", "500", "--params", json.dumps(params)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(
            lambda: (
                TrainingRun.objects.filter(status=JobStatus.RUNNING).exists()
                or worker.poll() is not None
            ),
            120,
            "the worker to start training",
        )
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:] if worker.stderr else ""
        run = TrainingRun.objects.get(status=JobStatus.RUNNING)
        beat = run.heartbeat_at
        _wait_for(
            lambda: TrainingRun.objects.get(pk=run.pk).heartbeat_at != beat, 10, "a heartbeat"
        )
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    killed_at = time.monotonic()
    client = api_client_for(data_manager)
    # Still inside the window: the request is answered with the (apparently) running run.
    first = client.post("/api/training-runs/", {"epochs": 1}, format="json")
    if time.monotonic() - killed_at < STALE_SECONDS - 0.5:
        assert first.json()["id"] == run.pk
    time.sleep(STALE_SECONDS + 0.5)
    # (This run trains at once in the test's synchronous queue: keep it tiny.)
    response = client.post(
        "/api/training-runs/", {"epochs": 1, **TINY_PARAMS, "case_model": False}, format="json"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["id"] != run.pk
    run.refresh_from_db()
    assert run.status == JobStatus.INTERRUPTED and run.error
    assert not ModelVersion.objects.filter(run=run).exists()


def test_reaper_leaves_beating_jobs_alone_and_reaps_silent_and_lost_ones(
    make_phantom_case: Any, registered_model: Any, neurologist: Any, data_manager: Any
) -> None:
    case = make_phantom_case("lacunar", seed=50)
    model = registered_model()
    now = timezone.now()
    old = now - timedelta(hours=1)
    beating = PredictionJob.objects.create(
        case=case, model=model, created_by=neurologist, status=JobStatus.RUNNING, heartbeat_at=now
    )
    silent = ExportJob.objects.create(
        format="nnunet", created_by=data_manager, status=JobStatus.RUNNING, heartbeat_at=old
    )
    lost = ExportJob.objects.create(format="dicom-seg", created_by=data_manager)
    ExportJob.objects.filter(pk=lost.pk).update(created_at=old)  # queued, never given a task
    fresh = ExportJob.objects.create(format="dicom-seg", created_by=data_manager)
    reaped = jobs_reap_stale_all()
    assert reaped["predictions"] == [] and sorted(reaped["exports"]) == sorted([silent.pk, lost.pk])
    statuses = dict(ExportJob.objects.values_list("pk", "status"))
    assert statuses[silent.pk] == statuses[lost.pk] == JobStatus.INTERRUPTED
    assert statuses[fresh.pk] == JobStatus.QUEUED
    beating.refresh_from_db()
    assert beating.status == JobStatus.RUNNING
