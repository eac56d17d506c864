"""Ingest benchmark: a 25-slice phantom DWI series through the upload service, vs bare pydicom
and vs Orthanc storing the same files.

Measures (median of ``--runs`` interleaved runs, wall time):

* ``platform_s``: ``upload_ingest`` (read, validate, de-identify, order, stack, rescale, write
  one ``.npy``, rows and audit) into a fresh case per run;
* ``bare_pydicom_s``: ``pydicom.dcmread`` + ``pixel_array`` + ``numpy.stack`` of the same files;
* ``orthanc_s``: Debian's Orthanc (started here on loopback with a temporary configuration)
  storing the same files with one ``POST /instances`` per file, sequentially, like a DICOM
  upload client; the instances are deleted between runs (untimed) so every run stores anew.

Prints one JSON object. Targets: ``ratio_vs_bare <= 3`` and ``ratio_vs_orthanc <= 1``.
Run: ``.venv/bin/python bench/ingest.py [--runs 7]``. Django is set up with the test settings
(temporary DATA_DIR and SQLite) unless DJANGO_SETTINGS_MODULE says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ORTHANC = "/usr/sbin/Orthanc"
TARGETS = {"ratio_vs_bare": 3.0, "ratio_vs_orthanc": 1.0}


def django_setup() -> None:
    if "DJANGO_SETTINGS_MODULE" not in os.environ:
        # The test settings give a temporary DATA_DIR; force the embedded SQLite database so a
        # DATABASE_URL in the environment is never written to by a benchmark.
        os.environ.pop("DATABASE_URL", None)
        os.environ.pop("REDIS_URL", None)
        os.environ["DJANGO_SETTINGS_MODULE"] = "strokeaid_site.settings.test"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        call_command("migrate", verbosity=0, interactive=False)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- Orthanc -------------------------------------------------------------------------------------
def orthanc_ensure() -> str | None:
    """Path of the Orthanc binary, installing Debian's package if missing; None if impossible."""
    if os.path.exists(ORTHANC):
        return ORTHANC
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run([apt, "update"], check=False, env=env, capture_output=True, timeout=600)
        subprocess.run(
            [apt, "install", "-y", "--no-install-recommends", "orthanc"],
            check=False, env=env, capture_output=True, timeout=900,
        )  # fmt: skip
    return ORTHANC if os.path.exists(ORTHANC) else None


class Orthanc:
    """A private Orthanc on loopback: own storage, HTTP on a free port, DICOM server off."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "strokeaid-bench",
            "StorageDirectory": str(workdir / "storage"),
            "IndexDirectory": str(workdir / "index"),
            "HttpPort": self.port,
            "HttpServerEnabled": True,
            "DicomServerEnabled": False,
            "DicomPort": free_port(),
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "StorageCompression": False,
            "SaveJobs": False,
            "ConcurrentJobs": 1,
        }
        self.config_path = workdir / "orthanc.json"
        self.config_path.write_text(json.dumps(config))
        self.log = open(workdir / "orthanc.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [binary, str(self.config_path)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/dicom"} if body is not None else {}
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def wait_ready(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("Orthanc exited at start (see its log)")
            try:
                status, body = self.request("GET", "/system")
                if status == 200:
                    return str(json.loads(body).get("Version", "?"))
            except OSError:
                self.conn = None
            time.sleep(0.2)
        raise RuntimeError("Orthanc did not answer in time")

    def store(self, payloads: list[bytes]) -> None:
        for data in payloads:
            status, body = self.request("POST", "/instances", data)
            if status != 200:
                raise RuntimeError(f"Orthanc refused an instance: {status} {body[:200]!r}")

    def clear(self) -> None:
        _status, body = self.request("GET", "/patients")
        for patient in json.loads(body):
            self.request("DELETE", f"/patients/{patient}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if self.conn is not None:
                self.conn.close()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log.close()


@contextmanager
def orthanc_running(workdir: Path) -> Iterator[tuple[Orthanc | None, dict[str, Any]]]:
    info: dict[str, Any] = {"available": False}
    binary = orthanc_ensure()
    if binary is None:
        info["error"] = "Orthanc is not installed and could not be installed"
        yield None, info
        return
    server = Orthanc(binary, workdir)
    try:
        try:
            info["version"] = server.wait_ready()
            info["available"] = True
        except RuntimeError as exc:
            info["error"] = str(exc)
            log = workdir / "orthanc.log"
            if log.exists():
                info["log_tail"] = log.read_text(errors="replace")[-800:]
            yield None, info
            return
        yield server, info
    finally:
        server.stop()  # always, even on error


# --- the measured paths --------------------------------------------------------------------------
def bare_pydicom(paths: list[Path]) -> Any:
    import numpy as np
    import pydicom

    return np.stack([pydicom.dcmread(p).pixel_array for p in paths])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20240)
    parser.add_argument("--no-orthanc", action="store_true", help="skip the Orthanc comparison")
    args = parser.parse_args()

    django_setup()
    from django.contrib.auth import get_user_model

    from cases.models import Case
    from cases.phantoms import generate_case, write_dicom_series
    from cases.services.upload import (
        UploadInput,
        upload_ingest,
        upload_limits_check,
        upload_parse,
        upload_store,
    )

    workdir = Path(tempfile.mkdtemp(prefix="strokeaid-bench-ingest-"))
    try:
        phantom = generate_case(etiology="lacunar", seed=args.seed)
        paths = write_dicom_series(phantom, "DWI", workdir / "dicom")
        payloads = [p.read_bytes() for p in paths]
        user, _created = get_user_model().objects.get_or_create(username="bench-ingest")

        def inputs() -> list[UploadInput]:
            def opener(path: Path) -> Any:
                return lambda: open(path, "rb")  # the caller closes it

            return [UploadInput(name=p.name, size=p.stat().st_size, opener=opener(p))
                    for p in paths]  # fmt: skip

        times: dict[str, list[float]] = {
            "platform": [], "platform_parse": [], "platform_store": [], "bare": [], "orthanc": []
        }  # fmt: skip
        with (
            orthanc_running(workdir / "orthanc")
            if not args.no_orthanc
            else contextlib.nullcontext(
                (None, {"available": False, "error": "skipped (--no-orthanc)"})
            ) as (orthanc, orthanc_info)
        ):
            # One warm-up of each path (imports, codecs, Orthanc's first database writes).
            bare_pydicom(paths)
            case = Case.objects.create(code="BENCH-WARM-0", created_by=user)
            upload_ingest(user=user, case=case, inputs=inputs())
            if orthanc is not None:
                orthanc.store(payloads)
                orthanc.clear()
            for run in range(args.runs):
                t0 = time.perf_counter()
                array = bare_pydicom(paths)
                times["bare"].append(time.perf_counter() - t0)

                # upload_ingest's three steps, timed apart to show where the time goes.
                case = Case.objects.create(code=f"BENCH-{os.getpid()}-{run}", created_by=user)
                t0 = time.perf_counter()
                items = inputs()
                upload_limits_check(inputs=items, kind=None)
                parsed = upload_parse(inputs=items, kind=None)
                t1 = time.perf_counter()
                series = upload_store(user=user, case=case, parsed=parsed)
                t2 = time.perf_counter()
                times["platform"].append(t2 - t0)
                times["platform_parse"].append(t1 - t0)
                times["platform_store"].append(t2 - t1)
                assert series[0].shape == list(array.shape)

                if orthanc is not None:
                    t0 = time.perf_counter()
                    orthanc.store(payloads)
                    times["orthanc"].append(time.perf_counter() - t0)
                    orthanc.clear()
        platform = statistics.median(times["platform"])
        bare = statistics.median(times["bare"])
        orthanc_s = statistics.median(times["orthanc"]) if times["orthanc"] else None
        ratio_bare = platform / bare
        ratio_orthanc = platform / orthanc_s if orthanc_s else None
        out = {
            "benchmark": "ingest",
            "runs": args.runs,
            "files": len(paths),
            "shape": list(array.shape),
            "bytes": sum(len(p) for p in payloads),
            "platform_s": round(platform, 4),
            "platform_parse_s": round(statistics.median(times["platform_parse"]), 4),
            "platform_store_s": round(statistics.median(times["platform_store"]), 4),
            "bare_pydicom_s": round(bare, 4),
            "ratio_vs_bare": round(ratio_bare, 3),
            "orthanc_s": round(orthanc_s, 4) if orthanc_s else None,
            "ratio_vs_orthanc": round(ratio_orthanc, 3) if ratio_orthanc else None,
            "targets": TARGETS,
            "pass": {
                "ratio_vs_bare": ratio_bare <= TARGETS["ratio_vs_bare"],
                "ratio_vs_orthanc": (
                    ratio_orthanc <= TARGETS["ratio_vs_orthanc"] if ratio_orthanc else None
                ),
            },
            "orthanc": orthanc_info,
            "samples_s": {k: [round(v, 4) for v in vs] for k, vs in times.items()},
            "cpu_count": os.cpu_count(),
        }
        print(json.dumps(out, indent=2))
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
