"""The gateway against a real Orthanc and the real listener (pynetdicom) in this process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.listener import DicomListener, ListenerConfig
from tests.gateway.orthanc import ORTHANC, PLUGINS, Orthanc, free_port
from tests.inference.conftest import (  # noqa: F401
    make_phantom_case,
    registered_model,
    store_prediction,
)


@pytest.fixture(autouse=True)
def _empty_spool() -> Iterator[None]:
    """Each test starts with an empty spool (the data directory lives for the session)."""
    import shutil

    from gateway.services import spool_root

    shutil.rmtree(spool_root(), ignore_errors=True)
    yield
    shutil.rmtree(spool_root(), ignore_errors=True)


@pytest.fixture
def listener_port() -> int:
    return free_port()


@pytest.fixture
def start_listener(
    listener_port: int, transactional_db: Any
) -> Iterator[Callable[..., DicomListener]]:
    # transactional_db first: listeners stop (their threads end) before the database is
    # flushed for the next test.
    started: list[DicomListener] = []

    def _start(**overrides: Any) -> DicomListener:
        config = ListenerConfig(
            ae_title="STROKEAID",
            port=listener_port,
            peers=["ORTHANC"],
            study_timeout=0.5,
            autopredict=False,
            host="127.0.0.1",
            # The tests run the checks themselves (``checks()``), in the test's thread: the
            # listener's own checker thread would race the test's database on SQLite.
            check_seconds=3600.0,
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        listener = DicomListener(config)
        listener.start()
        started.append(listener)
        CURRENT[:] = [listener]
        return listener

    yield _start
    for listener in started:
        listener.stop()
    CURRENT.clear()


@pytest.fixture
def orthanc(listener_port: int) -> Iterator[Orthanc]:
    if not Path(ORTHANC).exists():
        pytest.skip("Debian's orthanc is not installed (make test installs it)")
    pacs = Orthanc(
        {"strokeaid": ["STROKEAID", "127.0.0.1", listener_port]},
        dicomweb=(PLUGINS / "libOrthancDicomWeb.so").exists(),
    )
    yield pacs
    pacs.stop()


#: The listener the running test started last (its checks run in ``wait_until``).
CURRENT: list[DicomListener] = []


def wait_until(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Runs the current listener's checks (ingest due studies, send due results) and polls
    ``condition`` until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if CURRENT:
            CURRENT[0].check_once()
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
