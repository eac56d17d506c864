"""Shared setup of the platform benchmarks: Django with throw-away data and database, and the
platform served as deployed (uvicorn + the ASGI app) on a free loopback port."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    """Test settings: a fresh temporary data dir and SQLite file, migrated."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "strokeaid_site.settings.test")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def platform_env(work: Path) -> dict[str, str]:
    """Local settings on a throw-away data dir and SQLite file under ``work``; also applied to
    this process (so it can prepare data) and returned for the server process."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "strokeaid_site.settings.local",
        "STROKEAID_DATA_DIR": str(work / "platform"),
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"sqlite:///{work / 'platform' / 'bench.sqlite3'}",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 120.0) -> None:
    """Waits until ``GET path`` on the loopback port answers below 500."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not answer {path} in {timeout:.0f} s")


def start_platform(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """The ASGI server serving ``strokeaid_site.asgi:application`` on 127.0.0.1:``port``."""
    sys.path.insert(0, str(ROOT))
    from strokeaid_site.server import server_command

    cmd = server_command(host="127.0.0.1", port=port)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
