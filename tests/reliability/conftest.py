"""Fixtures of the reliability suite: concurrent clients released together, queues kept idle."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connections

# The phantom-case and model fixtures of the inference tests.
from tests.inference.conftest import make_phantom_case, registered_model  # noqa: F401


@pytest.fixture
def run_together() -> Callable[[int, Callable[[int], Any]], list[Any]]:
    """Runs ``fn(i)`` in ``n`` threads released at once by a barrier; returns the results (an
    exception is returned in its slot). Each thread closes its own database connection."""

    def _run(n: int, fn: Callable[[int], Any]) -> list[Any]:
        barrier = threading.Barrier(n)
        results: list[Any] = [None] * n

        def worker(i: int) -> None:
            try:
                barrier.wait(timeout=30)
                results[i] = fn(i)
            except Exception as exc:  # noqa: BLE001 - reported to the test, which asserts on it
                results[i] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return results

    return _run


@pytest.fixture
def queue_only() -> Iterator[None]:
    """Queued tasks stay in the broker instead of running in the requesting thread (the test
    settings run tasks synchronously): these tests count job rows, not results."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    sync = Conf.SYNC
    Conf.SYNC = False
    try:
        yield
    finally:
        Conf.SYNC = sync
        for name in ("default", "training"):
            get_broker(name).purge_queue()
