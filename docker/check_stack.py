"""The REST part of ``make docker-check`` (docker/check.sh): run inside the web container
against its own port, with only the image's Python. Waits for ``/healthz``, logs in as the
demo clinician, creates a case, uploads a phantom DWI + ADC + FLAIR study (real DICOM
files, zipped), queues a prediction with the active (demo) model and waits for its answer.
Prints one JSON line with the timings; exits 1 on the first failure.

    python docker/check_stack.py http://127.0.0.1:8000
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any


def call(base: str, method: str, path: str, *, token: str | None = None, body: Any = None,
         files: bytes | None = None) -> tuple[int, Any]:  # fmt: skip
    headers = {"Accept": "application/json"}
    data = None
    if token:
        headers["Authorization"] = f"Token {token}"
    if files is not None:
        boundary = uuid.uuid4().hex
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        data = (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="files"; filename="study.zip"\r\n'
                "Content-Type: application/zip\r\n\r\n"
            ).encode()
            + files
            + f"\r\n--{boundary}--\r\n".encode()
        )
    elif body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    if not base.startswith(("http://", "https://")):
        raise SystemExit(f"docker-check: not an HTTP address: {base}")
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:200]


def study_zip() -> bytes:
    import django

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project (/app)

    django.setup()
    from cases.phantoms import generate_case
    from cases.phantoms.dicom import write_dicom_series

    phantom = generate_case(etiology="cardioembolic", seed=4242, shape=(16, 128, 128))
    out = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(out, "w") as z:
        for kind in ("DWI", "ADC", "FLAIR"):
            folder = Path(tmp) / kind
            folder.mkdir()
            for path in write_dicom_series(phantom, kind, folder):
                z.write(path, f"{kind}/{Path(path).name}")
    return out.getvalue()


def wait(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result is not None:
            return result
        time.sleep(1)
    raise SystemExit(f"docker-check: {what} did not happen in {timeout:.0f} s")


def main() -> None:
    base = sys.argv[1].rstrip("/")
    t0 = time.monotonic()

    def healthy() -> bool | None:
        try:
            return True if call(base, "GET", "/healthz")[0] == 200 else None
        except OSError:
            return None

    wait("/healthz answering 200", healthy, 180)
    t_health = time.monotonic() - t0
    status, answer = call(base, "POST", "/api/auth/token/",
                          body={"username": "clinician", "password": "strokeaid-demo"})  # fmt: skip
    assert status == 200, (status, answer)
    token = answer["token"]
    status, case = call(
        base, "POST", "/api/cases/", token=token, body={"code": f"DC-{int(time.time())}"}
    )
    assert status == 201, (status, case)
    t1 = time.monotonic()
    status, upload = call(base, "POST", f"/api/cases/{case['id']}/uploads/", token=token,
                          files=study_zip())  # fmt: skip
    assert status in (201, 202), (status, upload)
    series = upload.get("series", [])
    if status == 202:

        def uploaded() -> Any:
            job = call(base, "GET", f"/api/uploads/{upload['job']}/", token=token)[1]
            return job if job["status"] in ("done", "failed") else None

        job = wait("the upload", uploaded, 300)
        assert job["status"] == "done", job
        series = job["series"]
    assert len(series) == 3, series  # DWI, ADC and FLAIR
    t_upload = time.monotonic() - t1
    status, prediction = call(base, "POST", f"/api/cases/{case['id']}/predictions/", token=token)
    assert status == 202, (status, prediction)

    def predicted() -> Any:
        state = call(base, "GET", f"/api/predictions/{prediction['id']}/", token=token)[1]
        return state if state["status"] in ("done", "failed") else None

    state = wait("the prediction", predicted, 600)
    assert state["status"] == "done", state
    print(
        json.dumps(
            {
                "healthz_seconds": round(t_health, 1),
                "upload_seconds": round(t_upload, 1),
                "prediction_seconds": round(time.monotonic() - t1 - t_upload, 1),
                "etiology": state.get("etiology"),
                "series": len(series),
            }
        )
    )


if __name__ == "__main__":
    main()
