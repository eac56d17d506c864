"""A task worker's warm-up: the active model and the atlas loaded as the worker starts, only on
the default queue's workers, never fatal."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django_q.signals import post_spawn

from etiology.reasoning.atlas import atlas_available, load_atlas
from inference import apps
from inference.services import prediction, warmup

pytestmark = pytest.mark.django_db


def test_the_active_model_is_in_the_workers_cache_after_the_warm_up(registered_model) -> None:
    model = registered_model(activate=True)
    load_atlas.cache_clear()
    took = warmup.worker_warm_up()
    assert "model" in took
    assert (model.weights_key, model.weights_sha256) in prediction._cache
    # The first prediction then finds the loaded predictor instead of loading the weights.
    assert (
        prediction.predictor_for(model)
        is prediction._cache[(model.weights_key, model.weights_sha256)]
    )
    if atlas_available():
        assert "atlas" in took and load_atlas.cache_info().currsize == 1


def test_no_active_model_no_model_to_load(registered_model) -> None:
    registered_model(activate=False)
    assert "model" not in warmup.worker_warm_up()
    assert not prediction._cache


@pytest.fixture
def calls(monkeypatch) -> list[str]:
    made: list[str] = []
    monkeypatch.setattr(warmup, "worker_warm_up", lambda: made.append("warm") or {"model": 0.1})
    return made


def test_each_new_worker_of_the_default_queue_warms_up(calls, monkeypatch) -> None:
    monkeypatch.delenv("Q_CLUSTER_NAME", raising=False)
    post_spawn.send(sender="django_q", proc_name="Process-1")
    assert calls == ["warm"]


def test_training_workers_and_a_switched_off_warm_up_do_not(calls, monkeypatch, settings) -> None:
    monkeypatch.setenv("Q_CLUSTER_NAME", settings.TRAINING_QUEUE)
    post_spawn.send(sender="django_q", proc_name="Process-1")
    monkeypatch.delenv("Q_CLUSTER_NAME")
    settings.STROKEAID = {**settings.STROKEAID, "WORKER_WARMUP": False}
    post_spawn.send(sender="django_q", proc_name="Process-2")
    assert calls == []


def test_a_failed_warm_up_is_logged_and_the_worker_starts(monkeypatch, caplog) -> None:
    def broken() -> Any:
        raise RuntimeError("weights unreadable")

    monkeypatch.setattr(warmup, "worker_warm_up", broken)
    monkeypatch.delenv("Q_CLUSTER_NAME", raising=False)
    with caplog.at_level(logging.WARNING, logger=apps.__name__):
        apps.warm_worker(proc_name="Process-3")
    assert "warm-up failed" in caplog.text
