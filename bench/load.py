"""Benchmark: mixed load on the platform as deployed, on PostgreSQL (JSON out).

The outside probe's mix: 70 % windowed slice PNGs, 15 % case list, 15 % mask GETs, from
``--clients`` keep-alive threads for ``--duration`` seconds each, against uvicorn serving the
ASGI app on loopback with a throw-away PostgreSQL database (``DATABASE_URL``'s server,
default the local one). Reports per client count: requests/s, p50/p99 latency, the number of
5xx answers and failed connections, and the most PostgreSQL connections the server held
(sampled from ``pg_stat_activity``). The platform runs with its defaults (a psycopg 3
connection pool per process); the baseline is the old default, no pool and
``CONN_MAX_AGE=60`` (a persistent connection per request thread), run the same way.
Targets at 16 clients: 0 errors and p99 <= 250 ms. The server runs as many processes as
``manage.py serve`` starts by default (one per core on PostgreSQL);
``--web-workers N`` runs N (``WEB_CONCURRENCY``).

Usage: ``.venv/bin/python bench/load.py [--clients 8 16] [--duration 30] [--runs 1]
[--no-baseline]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import ROOT, free_port, start_platform, wait_http

SHAPE = (25, 256, 256)
DB_NAME = "strokeaid_bench_load"


def _pg_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/strokeaid"
    return base.rsplit("/", 1)[0] + f"/{name}"


def _admin(*statements: str) -> None:
    """Runs statements on the server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    conn = psycopg.connect(_pg_url("postgres"), autocommit=True)
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.close()


def prepare(work: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """A fresh PostgreSQL database with one phantom case (DWI, ADC, FLAIR) and a saved mask."""
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)", f"CREATE DATABASE {DB_NAME}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "strokeaid_site.settings.local",
        "STROKEAID_DATA_DIR": str(work / "platform"),
        "DEBUG": "false",
        "LOG_LEVEL": "ERROR",
        "DATABASE_URL": _pg_url(DB_NAME),
        "REDIS_URL": "",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from accounts.services import user_create
    from annotation.services import annotation_import_mask
    from cases.phantoms import generate_case
    from cases.services.case import case_create
    from cases.services.series import series_create_from_phantom

    call_command("migrate", verbosity=0, interactive=False)
    user = user_create(username="bench", password=secrets.token_urlsafe(), roles=["neurologist"])
    phantom = generate_case(etiology="cardioembolic", seed=2024, shape=SHAPE)
    case = case_create(user=user, code="LOAD-0001", etiology="cardioembolic", confirmed=True)
    series = series_create_from_phantom(case=case, phantom=phantom, uid_stem="77")
    dwi = series["DWI"]
    annotation_import_mask(user=user, series=dwi, mask=phantom.mask, state="draft")
    token, _ = Token.objects.get_or_create(user=user)
    from django.db import connections

    connections.close_all()
    return env, {"series": [s.pk for s in series.values()], "dwi": dwi.pk, "token": token.key}


def _urls(ids: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """(kind, url) of the next request of the mix."""
    roll = rng.random()
    if roll < 0.70:
        sid = rng.choice(ids["series"])
        return "slice", f"/api/series/{sid}/slices/{rng.randrange(SHAPE[0])}.png"
    if roll < 0.85:
        return "case_list", "/api/cases/?page_size=20"
    return "mask", f"/api/series/{ids['dwi']}/mask.raw"


def _quantiles(values: list[float]) -> dict[str, float | None]:
    every = sorted(values)
    n = len(every)
    if not n:
        return {"p50_ms": None, "p99_ms": None}
    return {
        "p50_ms": round(1000 * every[n // 2], 2),
        "p99_ms": round(1000 * every[min(n - 1, int(n * 0.99))], 2),
    }


def _connections(stop: threading.Event, peak: list[int]) -> None:
    import psycopg

    conn = psycopg.connect(_pg_url("postgres"), autocommit=True)
    with conn.cursor() as cur:
        while not stop.wait(0.25):
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (DB_NAME,))
            peak[0] = max(peak[0], int(cur.fetchone()[0]))
    conn.close()


def hammer(port: int, ids: dict[str, Any], clients: int, duration: float) -> dict[str, Any]:
    headers = {"Authorization": f"Token {ids['token']}", "Accept-Encoding": "gzip"}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    by_kind: dict[str, list[float]] = {"slice": [], "case_list": [], "mask": []}
    server_errors = [0] * clients
    failures = [0] * clients
    barrier = threading.Barrier(clients + 1)
    deadline: list[float] = [0.0]

    def client(i: int) -> None:
        rng = random.Random(i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        barrier.wait()
        while time.monotonic() < deadline[0]:
            kind, url = _urls(ids, rng)
            start = time.perf_counter()
            try:
                conn.request("GET", url, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                failures[i] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            elapsed = time.perf_counter() - start
            latencies[i].append(elapsed)
            by_kind[kind].append(elapsed)  # list.append is atomic under the GIL
            if response.status >= 500:
                server_errors[i] += 1
        conn.close()

    stop = threading.Event()
    peak = [0]
    sampler = threading.Thread(target=_connections, args=(stop, peak), daemon=True)
    sampler.start()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + duration
    barrier.wait()
    for thread in threads:
        thread.join()
    stop.set()
    sampler.join(timeout=5)
    every = [x for per in latencies for x in per]
    return {
        "requests": len(every),
        "req_per_s": round(len(every) / duration, 1),
        **_quantiles(every),
        "server_errors": sum(server_errors),
        "failed_connections": sum(failures),
        "peak_db_connections": peak[0],
        "by_kind": {kind: _quantiles(values) for kind, values in by_kind.items()},
    }


def web_processes(args: Any, env: dict[str, str]) -> int:
    """``--web-workers``, else what ``manage.py serve`` would start with this environment."""
    from strokeaid_site.server import default_web_processes

    if args.web_workers:
        return int(args.web_workers)
    database = env.get("DATABASE_URL", "")
    return default_web_processes(sqlite=not database or database.startswith("sqlite"))


def run_config(
    env: dict[str, str],
    ids: dict[str, Any],
    work: Path,
    args: Any,
    *,
    name: str,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Serves with ``env`` plus ``extra`` and runs every client count; ``name`` labels the
    server's log file."""
    port = free_port()
    server_env = {**env, **(extra or {})}
    server_env["WEB_CONCURRENCY"] = str(web_processes(args, server_env))
    server = start_platform(server_env, port, work / f"server-{name}.log")
    try:
        wait_http(port, "/healthz")
        out: dict[str, Any] = {}
        for clients in args.clients:
            runs = [hammer(port, ids, clients, args.duration) for _ in range(args.runs)]
            median: dict[str, Any] = {
                key: statistics.median(r[key] for r in runs if r[key] is not None)
                for key in runs[0]
                if key != "by_kind"
            }
            median["by_kind"] = runs[len(runs) // 2]["by_kind"]
            out[str(clients)] = median
        return out
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=None,
        help="server processes (WEB_CONCURRENCY; default: manage.py serve's, one per core "
        "on PostgreSQL)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strokeaid-load-") as tmp:
        work = Path(tmp)
        env, ids = prepare(work)
        report: dict[str, Any] = {
            "benchmark": "load",
            "mix": "70% slice PNG, 15% case list, 15% mask GET",
            "duration_s": args.duration,
            "web_processes": web_processes(args, env),
            "stroke_aid": run_config(env, ids, work, args, name="stroke_aid"),
        }
        if not args.no_baseline:
            report["baseline_conn_max_age_60"] = run_config(
                env,
                ids,
                work,
                args,
                name="baseline",
                extra={"DB_POOL": "false", "CONN_MAX_AGE": "60"},
            )
        top = report["stroke_aid"][str(max(args.clients))]
        report["targets_met"] = {
            "zero_errors": top["server_errors"] == 0 and top["failed_connections"] == 0,
            "p99_le_250ms": top["p99_ms"] is not None and top["p99_ms"] <= 250,
        }
    _admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
