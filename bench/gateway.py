"""DICOM gateway: time from the last instance sent by the PACS to the results (SEG and SR)
stored back in it, for a 25-slice phantom study (DWI, ADC and FLAIR), minus the study quiet
period, as a ratio to a REST upload + prediction of the same files (same server, same run).
Target: ratio <= 1.3.

The PACS is a real Orthanc (Debian's package) that pushes the study with
``POST /modalities/strokeaid/store`` to the real listener (``manage.py dicom_listener``,
autopredict on, results back to Orthanc by C-STORE); the platform is served as deployed
(``manage.py serve``: uvicorn plus the django-q2 workers, ORM broker, SQLite) with a
registered untrained U-Net (speed does not depend on the weights). Each repeat sends a new
study (a study sent twice makes no second case); both paths poll every 0.2 s; the runs
alternate, median of --repeats each; JSON on stdout.

    python bench/gateway.py [--repeats 3] [--slices 25] [--quiet 2]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _django import (
    ROOT,
    free_port,
    platform_setup,
    ratio_report,
    rest_upload_predict,
    user_with_model,
    wait_http,
)

POLL = 0.2
KINDS = ("DWI", "ADC", "FLAIR")


def _study(slices: int, seed: int, work: Path) -> list[Path]:
    from cases.phantoms import generate_case
    from cases.phantoms.dicom import write_dicom_series

    phantom = generate_case(etiology="cardioembolic", seed=seed, shape=(slices, 128, 128))
    files: list[Path] = []
    for kind in KINDS:
        folder = work / f"study{seed}" / kind
        folder.mkdir(parents=True)
        files += write_dicom_series(phantom, kind, folder)
    return files


def _rest_once(base: str, token: str, files: list[Path], n: int) -> float:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for path in files:
            z.writestr(f"{path.parent.name}/{path.name}", path.read_bytes())
    return rest_upload_predict(base, token, buffer.getvalue(), f"REST-{n:04d}")


def _results_in(orthanc: object, study: str) -> set[str]:
    found = set()
    for series in orthanc.get(f"/studies/{study}")["Series"]:  # type: ignore[attr-defined]
        modality = orthanc.get(f"/series/{series}")["MainDicomTags"]["Modality"]  # type: ignore[attr-defined]
        if modality in ("SEG", "SR"):
            found.add(modality)
    return found


def _gateway_once(orthanc: object, files: list[Path], quiet: float) -> tuple[float, set[str]]:
    study = orthanc.upload(files)  # type: ignore[attr-defined]
    orthanc.post("/modalities/strokeaid/store", study)  # type: ignore[attr-defined]
    last_sent = time.perf_counter()  # Orthanc answers once every instance is stored with us
    deadline = last_sent + 900
    while time.perf_counter() < deadline:
        found = _results_in(orthanc, study)
        if "SR" in found:  # the SR comes with the SEG, in one association after it
            return time.perf_counter() - last_sent - quiet, found
        time.sleep(POLL)
    raise RuntimeError("no results came back in 15 minutes")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--slices", type=int, default=25)
    p.add_argument("--quiet", type=float, default=2.0, help="study quiet period (s)")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        work = Path(tmp)
        env = platform_setup(work)
        from tests.gateway.orthanc import Orthanc

        token = user_with_model(work, "bench-manager", "data_manager")
        studies = [_study(args.slices, seed, work) for seed in range(100, 101 + args.repeats)]

        dicom_port = free_port()
        orthanc = Orthanc({"strokeaid": ["STROKEAID", "127.0.0.1", dicom_port]})
        gateway_env = {
            **env,
            "STROKEAID_DICOM_PORT": str(dicom_port),
            "STROKEAID_DICOM_PEERS": orthanc.aet,
            "STROKEAID_DICOM_STUDY_TIMEOUT": str(args.quiet),
            "STROKEAID_DICOM_AUTOPREDICT": "true",
            "STROKEAID_DICOM_DESTINATIONS": f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--no-collectstatic"],
            cwd=ROOT,
            env={**gateway_env, "TELEGRAM_BOT_TOKEN": ""},
            stdout=(work / "serve.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        listener = subprocess.Popen(
            [sys.executable, "manage.py", "dicom_listener"],
            cwd=ROOT,
            env=gateway_env,
            stdout=(work / "listener.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_http(port, "/healthz")
            _rest_once(base, token, studies[0], 0)  # warm: model load, first registration
            rest, gateway, returned = [], [], []
            for n in range(1, args.repeats + 1):
                rest.append(_rest_once(base, token, studies[n], n))
                seconds, found = _gateway_once(orthanc, studies[n], args.quiet)
                gateway.append(seconds)
                returned.append(sorted(found))
        finally:
            listener.terminate()
            server.terminate()
            listener.wait(30)
            server.wait(30)
            orthanc.stop()
        report = ratio_report(
            "gateway",
            "gateway",
            gateway,
            rest,
            1.3,
            slices=args.slices,
            series=len(KINDS),
            repeats=args.repeats,
            quiet_seconds=args.quiet,
            returned=returned,
        )
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
