"""Mixed load at 16 clients on PostgreSQL, the platform served as deployed (uvicorn): no 5xx,
no failed connection, and a bounded number of database connections (bench/load.py, short)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="the load test runs against PostgreSQL (set DATABASE_URL, as CI does)",
)
def test_sixteen_clients_get_no_server_error_and_few_connections() -> None:
    result = subprocess.run(
        [sys.executable, "bench/load.py", "--clients", "16", "--duration", "6", "--no-baseline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{") :])
    at16 = report["stroke_aid"]["16"]
    assert at16["requests"] > 100, at16
    assert at16["server_errors"] == 0 and at16["failed_connections"] == 0, at16
    # One short-lived connection per request in flight (Django's per-request threads), never
    # one kept per thread as before: well under PostgreSQL's default max_connections (100).
    assert at16["peak_db_connections"] <= 24, at16
