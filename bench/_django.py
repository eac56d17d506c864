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


def user_with_model(work: Path, username: str, group: str) -> str:
    """A user of ``group`` with an API token, and an untrained U-Net registered and active
    (a benchmark's speed does not depend on the weights); returns the token."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from cases.models import Label, LabelSet
    from inference.ml.networks import ModelSpec, build_from_spec, save_checkpoint
    from inference.services.registry import model_version_register

    user = get_user_model().objects.create_user(username, password="x-Bench-123")  # noqa: S106
    user.groups.add(Group.objects.get(name=group))
    token = str(Token.objects.create(user=user).key)
    label_set = LabelSet.objects.get(is_active=True)
    labels = list(Label.objects.filter(label_set=label_set).order_by("value"))
    spec = ModelSpec(
        label_values=tuple(lab.value for lab in labels),
        label_names=tuple(lab.name for lab in labels),
    )
    path = save_checkpoint(work / "w.pt", model=build_from_spec(spec), spec=spec, epoch=0)
    model_version_register(
        name="bench",
        checkpoint_file=path,
        spec=spec.to_dict(),
        label_set=label_set,
        activate=True,
        user=user,
    )
    return token


def platform_setup(work: Path) -> dict[str, str]:
    """``platform_env(work)``, then Django set up on it and migrated; returns the env."""
    env = platform_env(work)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return env


def rest_upload_predict(
    base: str,
    token: str,
    study_zip: bytes,
    code: str,
    *,
    kind: str | None = None,
    report: bool = False,
    poll: float = 0.2,
) -> float:
    """Seconds a REST client takes from a new case to a done prediction: create the case,
    upload the zipped study (``kind`` given or read from the headers), wait for the upload,
    queue the prediction, wait for it, and with ``report`` fetch its report picture."""
    import httpx

    started = time.perf_counter()
    with httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=300) as c:
        case = c.post("/api/cases/", json={"code": code}).json()
        up = c.post(
            f"/api/cases/{case['id']}/uploads/",
            data={"kind": kind} if kind else {},
            files=[("files", ("study.zip", study_zip, "application/zip"))],
        )
        if up.status_code == 202:
            job = up.json()["job"]
            while c.get(f"/api/uploads/{job}/").json()["status"] not in ("done", "failed"):
                time.sleep(poll)
        prediction = c.post(f"/api/cases/{case['id']}/predictions/").json()
        while True:
            state = c.get(f"/api/predictions/{prediction['id']}/").json()
            if state["status"] in ("done", "failed"):
                break
            time.sleep(poll)
        assert state["status"] == "done", state
        if report:
            png = c.get(f"/api/predictions/{prediction['id']}/report.png")
            assert png.content[:4] == b"\x89PNG"
    return time.perf_counter() - started


def ratio_report(
    benchmark: str, name: str, ours: list[float], rest: list[float], target: float, **extra: object
) -> dict[str, object]:
    """The JSON of a benchmark that times one path (``name``) against the REST baseline: the
    medians, every run, the ratio of the medians and whether it meets ``target``."""
    import statistics

    ratio = statistics.median(ours) / statistics.median(rest)
    return {
        "benchmark": benchmark,
        **extra,
        f"{name}_seconds_median": round(statistics.median(ours), 3),
        "rest_seconds_median": round(statistics.median(rest), 3),
        f"{name}_seconds": [round(x, 3) for x in ours],
        "rest_seconds": [round(x, 3) for x in rest],
        "ratio": round(ratio, 3),
        "target": target,
        "met": ratio <= target,
    }
