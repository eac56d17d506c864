"""Hostile bodies: size and gzip bombs are refused with bounded memory, deep JSON is a 400, and
the ASGI layer refuses an oversized body before Django reads it."""

from __future__ import annotations

import asyncio
import io
import json
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from asgiref.testing import ApplicationCommunicator

from cases.models import Series
from strokeaid_site.bodylimit import BodyLimit, body_limit

pytestmark = pytest.mark.reliability

MIB = 1024 * 1024


def _bomb(head: bytes, size: int) -> bytes:
    """``head`` then ``size`` zero bytes, as one gzip stream (~1000x smaller)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(MIB)
    out = [packer.compress(head)] + [packer.compress(chunk) for _ in range(size // MIB)]
    return b"".join(out) + packer.flush()


@pytest.mark.django_db
def test_nifti_gzip_bomb_is_refused_with_bounded_memory(
    api_client_for: Any, neurologist: Any, phantom_series: dict[str, Series]
) -> None:
    dwi = phantom_series["DWI"]
    header = nib.Nifti1Header()
    header.set_data_shape((4096, 4096, 32))  # a plausible header in front of 512 MiB of zeros
    header.set_data_dtype(np.uint8)
    raw = io.BytesIO()
    header.write_to(raw)
    body = _bomb(raw.getvalue()[:352] + bytes(4), 512 * MIB)
    assert len(body) < 2 * MIB
    client = api_client_for(neurologist)
    tracemalloc.start()
    try:
        response = client.put(
            f"/api/series/{dwi.pk}/mask.nii.gz",
            data=body,
            content_type="application/gzip",
        )
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413, response.content[:300]
    assert set(response.json()) == {"message", "extra"}
    assert peak < 64 * MIB, f"peak {peak / MIB:.0f} MiB"


@pytest.mark.django_db
def test_truncated_nifti_mask_is_a_400(
    api_client_for: Any, neurologist: Any, phantom_series: dict[str, Series]
) -> None:
    dwi = phantom_series["DWI"]
    z, y, x = dwi.shape
    image = nib.Nifti1Image(np.zeros((x, y, z), np.uint8), np.asarray(dwi.affine))
    whole = image.to_bytes()
    response = api_client_for(neurologist).put(
        f"/api/series/{dwi.pk}/mask.nii.gz",
        data=whole[: len(whole) // 2],
        content_type="application/octet-stream",
    )
    assert response.status_code == 400, response.content[:300]
    assert "incomplete" in response.json()["message"]


@pytest.mark.django_db
def test_json_nested_fifty_thousand_deep_is_a_400(anon_client: Any) -> None:
    body = "[" * 50_000 + "]" * 50_000
    response = anon_client.post("/api/auth/token/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["message"]


def _asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> Any:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    return scope, chunks


async def _run(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, bytes]:
    communicator = ApplicationCommunicator(app, scope)
    for i, chunk in enumerate(chunks):
        await communicator.send_input(
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        )
    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return start["status"], body["body"]


def _run_sync(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> tuple[int, bytes]:
    # A fresh event loop in its own thread: browser tests may leave one running in this one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _run(app, scope, chunks)).result(timeout=60)


class _Recorder:
    """A downstream ASGI app that reads the whole body and answers 200 with its size."""

    def __init__(self) -> None:
        self.read = 0
        self.called = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            self.read += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.read).encode()})


def test_declared_oversized_body_is_refused_before_reading() -> None:
    inner = _Recorder()
    app = BodyLimit(inner, limit_for=lambda path, ctype: 1000)
    # A 2 GiB declaration with a 10-byte body: answered at once, nothing read, no hang.
    scope, chunks = _asgi_post(
        app, "/api/series/1/mask.raw", [(b"content-length", str(2 * 1024**3).encode())], [b"x" * 10]
    )
    status, body = _run_sync(app, scope, chunks)
    assert status == 413 and not inner.called
    assert json.loads(body)["extra"]["limit"] == 1000


def test_chunked_body_is_cut_off_at_the_limit() -> None:
    inner = _Recorder()
    app = BodyLimit(inner, limit_for=lambda path, ctype: 1000)
    scope, chunks = _asgi_post(app, "/api/series/1/mask.raw", [], [b"x" * 400] * 10)
    status, _body = _run_sync(app, scope, chunks)
    assert status == 413 and inner.read <= 1000
    # Within the limit the body passes untouched.
    inner = _Recorder()
    app = BodyLimit(inner, limit_for=lambda path, ctype: 1000)
    scope, chunks = _asgi_post(app, "/api/series/1/mask.raw", [], [b"x" * 400] * 2)
    assert _run_sync(app, scope, chunks) == (200, b"800")


def test_route_limits(settings: Any) -> None:
    settings.STROKEAID = {**settings.STROKEAID, "MAX_UPLOAD_BYTES": 10**9, "MAX_BODY_BYTES": 10**8}
    assert body_limit("/api/cases/3/uploads/", "multipart/form-data; boundary=x") == 10**9
    assert body_limit("/cases/3/upload/", "multipart/form-data; boundary=x") == 10**9
    assert body_limit("/api/series/3/mask.raw", "application/octet-stream") == 10**8
    assert body_limit("/api/cases/", "application/json") == settings.DATA_UPLOAD_MAX_MEMORY_SIZE
