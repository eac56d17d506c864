"""The gateway against a real Orthanc and the real listener (pynetdicom) in this process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.listener import DicomListener, ListenerConfig
from tests.gateway.orthanc import ORTHANC, Orthanc, free_port
from tests.inference.conftest import make_phantom_case, registered_model  # noqa: F401


@pytest.fixture
def listener_port() -> int:
    return free_port()


@pytest.fixture
def start_listener(listener_port: int) -> Iterator[Callable[..., DicomListener]]:
    started: list[DicomListener] = []

    def _start(**overrides: Any) -> DicomListener:
        config = ListenerConfig(
            ae_title="STROKEAID",
            port=listener_port,
            peers=["ORTHANC"],
            study_timeout=1.0,
            autopredict=False,
            host="127.0.0.1",
            check_seconds=0.2,
        )
        for key, value in overrides.items():
            setattr(config, key, value)
        listener = DicomListener(config)
        listener.start()
        started.append(listener)
        return listener

    yield _start
    for listener in started:
        listener.stop()


@pytest.fixture
def orthanc(listener_port: int) -> Iterator[Orthanc]:
    if not Path(ORTHANC).exists():
        pytest.skip("Debian's orthanc is not installed (make test installs it)")
    pacs = Orthanc({"strokeaid": ["STROKEAID", "127.0.0.1", listener_port]})
    yield pacs
    pacs.stop()


def wait_until(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
