"""The entry point's roles run for real on this machine (embedded SQLite, ORM broker): the
migration job, the init containers' wait, and a worker that stops cleanly on SIGTERM, as
tini delivers it when Docker or Kubernetes stops the container."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .manifests import DOCKER, ROOT

pytestmark = pytest.mark.slow  # a fresh migrate of every app plus a worker start: ~30-60 s


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="strokeaid_site.settings.local",
        STROKEAID_DATA_DIR=str(data_dir),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        MIGRATION_WAIT_TRIES="1",
    )
    return env


def _role(role: str, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(DOCKER / "entrypoint.sh"), role],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_migrate_wait_and_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    env = _env(tmp_path)
    waited = _role("wait-for-migrations", env)
    assert waited.returncode == 1, "an empty database is not current"
    migrated = _role("migrate", env)
    assert migrated.returncode == 0, migrated.stderr
    assert _role("wait-for-migrations", env).returncode == 0

    worker = subprocess.Popen(
        ["sh", str(DOCKER / "entrypoint.sh"), "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # `exec` replaced the shell: the pid is django-q2's cluster process. It is ready for
        # signals once its sentinel has started the worker pool.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            sentinels = _children(worker.pid)
            if sentinels and len(_children(sentinels[0])) >= 2:
                break
            time.sleep(0.5)
        assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
        cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes()
        assert b"qcluster" in cmdline, cmdline
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=90)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, output
