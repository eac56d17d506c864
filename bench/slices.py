"""Benchmark: windowed slice PNGs from Stroke AID vs Orthanc's rendered previews (JSON out).

One phantom DWI series (25 x 256 x 256) is written as DICOM, ingested into the platform and
uploaded to Orthanc (Debian's ``orthanc``; installed with apt-get when missing). Both servers
run on loopback: the platform as deployed (uvicorn + the ASGI app, SQLite, temp data dir),
Orthanc from a temp JSON config (own storage, free port, no remote access, no auth). Then
``--clients`` threads with keep-alive connections request every slice in turn, as a review
strip or thumbnail grid does: ``/api/series/{id}/slices/{z}.png`` (token auth) against
``/instances/{id}/preview``. Each run lasts ``--duration`` seconds per server, servers
alternate, and the report gives the median over ``--runs`` of requests/s and p50/p99
latency, the throughput ratio, and whether the targets (ratio >= 2, p99 <= 20 ms) are met.

Usage: ``.venv/bin/python bench/slices.py [--clients 8] [--duration 6] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import free_port, platform_env, start_platform, wait_http

ORTHANC = "/usr/sbin/Orthanc"
SHAPE = (25, 256, 256)


def ensure_orthanc() -> None:
    if os.path.exists(ORTHANC):
        return
    print("Installing Debian's orthanc (apt-get)...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "orthanc"], check=True, env=env)


def prepare_platform(work: Path) -> tuple[dict[str, str], int, str, list[Path]]:
    """Migrates a fresh SQLite, writes the phantom DICOM, ingests it; returns env and ids."""
    env = platform_env(work)
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from accounts.services import user_create
    from cases.models import Series
    from cases.phantoms import generate_case, write_dicom_series
    from cases.services.case import case_create

    call_command("migrate", verbosity=0, interactive=False)
    phantom = generate_case(etiology="cardioembolic", seed=2024, shape=SHAPE)
    files = write_dicom_series(phantom, "DWI", work / "dicom", shuffle_names=False)
    user = user_create(username="bench", password=secrets.token_urlsafe(), roles=["neurologist"])
    case = case_create(user=user, code="BENCH-0001", etiology="cardioembolic", confirmed=True)
    try:
        from contextlib import contextmanager

        from cases.services.upload import UploadInput, upload_ingest

        def opener(path: Path) -> Any:
            @contextmanager
            def _open() -> Any:
                with open(path, "rb") as fh:
                    yield fh

            return _open

        inputs = [UploadInput(name=p.name, size=p.stat().st_size, opener=opener(p)) for p in files]
        series = upload_ingest(user=user, case=case, inputs=inputs).series[0]
        ingestion = "dicom"
    except ImportError:
        from cases.services.series import series_create_from_array

        series = series_create_from_array(
            case=case,
            kind=Series.Kind.DWI,
            array=phantom.images["DWI"],
            spacing=phantom.spacing,
            affine=phantom.affine,
            series_uid="2.25.2024",
        )
        ingestion = "array"
    token, _ = Token.objects.get_or_create(user=user)
    env["BENCH_INGESTION"] = ingestion
    return env, series.pk, token.key, files


def start_orthanc(work: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    config = {
        "Name": "bench",
        "StorageDirectory": str(work / "orthanc" / "storage"),
        "IndexDirectory": str(work / "orthanc" / "index"),
        "HttpPort": port,
        "DicomServerEnabled": False,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [],
        "HttpCompressionEnabled": False,
        "StorageCompression": False,
    }
    (work / "orthanc").mkdir(parents=True, exist_ok=True)
    path = work / "orthanc" / "orthanc.json"
    path.write_text(json.dumps(config))
    return subprocess.Popen([ORTHANC, str(path)], stdout=log.open("wb"), stderr=subprocess.STDOUT)


def upload_to_orthanc(port: int, files: list[Path]) -> list[str]:
    """Uploads the files (slice order) and returns the Orthanc instance ids, index = z."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ids = []
    for path in files:
        conn.request("POST", "/instances", body=path.read_bytes())
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"Orthanc refused {path.name}: {body}")
        ids.append(body["ID"])
    return ids


def hammer(
    port: int, urls: list[str], headers: dict[str, str], clients: int, duration: float
) -> dict[str, float]:
    """``clients`` keep-alive threads fetch ``urls`` round-robin for ``duration`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[index]
        i = index * 7
        start_barrier.wait()
        while time.perf_counter() < stop_at[0]:
            url = urls[i % len(urls)]
            i += 1
            t0 = time.perf_counter()
            try:
                conn.request("GET", url, headers=headers)
                response = conn.getresponse()
                body = response.read()
                ok = response.status == 200 and body[:4] == b"\x89PNG"
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - t0)
            if not ok:
                errors[index] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + duration
    start_barrier.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    flat = sorted(x for per in latencies for x in per)
    if not flat:
        raise RuntimeError("no request completed")
    return {
        "requests": len(flat),
        "errors": sum(errors),
        "rps": len(flat) / elapsed,
        "p50_ms": 1000 * flat[len(flat) // 2],
        "p99_ms": 1000 * flat[min(len(flat) - 1, int(len(flat) * 0.99))],
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        key: round(statistics.median(run[key] for run in runs), 2)
        for key in ("rps", "p50_ms", "p99_ms", "requests", "errors")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    ensure_orthanc()
    work = Path(tempfile.mkdtemp(prefix="strokeaid-bench-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env, series_id, token, files = prepare_platform(work)
        platform_port, orthanc_port = free_port(), free_port()
        processes.append(start_platform(env, platform_port, work / "server.log"))
        processes.append(start_orthanc(work, orthanc_port, work / "orthanc.log"))
        wait_http(platform_port, "/healthz")
        wait_http(orthanc_port, "/system")
        instance_ids = upload_to_orthanc(orthanc_port, files)

        platform_urls = [f"/api/series/{series_id}/slices/{z}.png" for z in range(SHAPE[0])]
        orthanc_urls = [f"/instances/{i}/preview" for i in instance_ids]
        platform_headers = {"Authorization": f"Token {token}", "Accept": "image/png"}
        orthanc_headers = {"Accept": "image/png"}
        # Warm-up: first touches (imports, page cache, memory maps) are not what is measured.
        hammer(platform_port, platform_urls, platform_headers, args.clients, 1.5)
        hammer(orthanc_port, orthanc_urls, orthanc_headers, args.clients, 1.5)

        platform_runs, orthanc_runs = [], []
        for _ in range(args.runs):
            platform_runs.append(
                hammer(platform_port, platform_urls, platform_headers, args.clients, args.duration)
            )
            orthanc_runs.append(
                hammer(orthanc_port, orthanc_urls, orthanc_headers, args.clients, args.duration)
            )
        platform, orthanc = median_of(platform_runs), median_of(orthanc_runs)
        ratio = round(platform["rps"] / orthanc["rps"], 2)
        report = {
            "benchmark": "slice_png_vs_orthanc_preview",
            "series_shape": list(SHAPE),
            "ingestion": env.get("BENCH_INGESTION"),
            "clients": args.clients,
            "duration_s": args.duration,
            "runs": args.runs,
            "cpus": os.cpu_count(),
            "platform": {"server": "uvicorn (1 process)", **platform},
            "orthanc": {"server": "Orthanc " + orthanc_version(orthanc_port), **orthanc},
            "ratio_rps": ratio,
            "targets": {
                "ratio_ge_2": ratio >= 2.0,
                "platform_p99_le_20ms": platform["p99_ms"] <= 20.0,
            },
        }
        print(json.dumps(report, indent=2))
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)


def orthanc_version(port: int) -> str:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/system")
        return str(json.loads(conn.getresponse().read()).get("Version", "?"))
    except (OSError, ValueError):
        return "?"


if __name__ == "__main__":
    main()
