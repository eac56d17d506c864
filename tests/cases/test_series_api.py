"""Series APIs: metadata, NIfTI round trip, raw slice/volume format, PNG slices, ETag/304."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from cases import rendering
from cases.models import Series
from cases.services.series import series_create_from_array
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "extra"}
    return body


def test_series_detail(api_client_for, clinician, neurologist, phantom_series) -> None:
    dwi = phantom_series["DWI"]
    response = api_client_for(neurologist).get(f"/api/series/{dwi.pk}/")
    assert response.status_code == 200
    body = response.json()
    for key in (
        "id",
        "case",
        "kind",
        "shape",
        "spacing",
        "affine",
        "description",
        "window_center",
        "window_width",
        "quarantined",
        "header",
    ):
        assert key in body
    assert body["kind"] == "DWI"
    assert body["shape"] == [8, 64, 64]
    assert body["case"] == dwi.case_id
    assert np.allclose(body["affine"], dwi.case.phantom.affine)
    assert body["window_width"] > 0
    # the clinician did not create this case: 404, like an unknown id
    assert_error(api_client_for(clinician).get(f"/api/series/{dwi.pk}/"), 404)
    assert_error(api_client_for(neurologist).get("/api/series/999999/"), 404)


def test_volume_nifti_round_trip(api_client_for, reviewer, phantom_series) -> None:
    adc = phantom_series["ADC"]
    client = api_client_for(reviewer)
    response = client.get(f"/api/series/{adc.pk}/volume.nii.gz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    assert f"PH-0007_ADC_{adc.pk}.nii.gz" in response["Content-Disposition"]
    assert response["ETag"] == f'"{adc.volume.sha256}"'
    assert "private" in response["Cache-Control"]
    image = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
    phantom = adc.case.phantom
    # NIfTI is (x, y, z): the same voxels as the stored (z, y, x) array, transposed
    assert np.array_equal(np.asarray(image.dataobj).transpose(2, 1, 0), phantom.images["ADC"])
    assert np.allclose(image.affine, phantom.affine)
    assert int(image.header["sform_code"]) == 1
    again = client.get(f"/api/series/{adc.pk}/volume.nii.gz", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert again.content == b""


def _int_series(case, array: np.ndarray, uid: str) -> Series:
    return series_create_from_array(
        case=case, kind="DWI", array=array, spacing=(5.0, 0.9, 0.8), series_uid=uid
    )


def test_raw_volume_int16(api_client_for, neurologist) -> None:
    case = CaseFactory(code="SA-0001", created_by=neurologist)
    array = np.arange(3 * 5 * 7, dtype=np.int16).reshape(3, 5, 7) - 50
    series = _int_series(case, array, "2.25.1")
    response = api_client_for(neurologist).get(f"/api/series/{series.pk}/volume.raw")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Shape"] == "3,5,7"
    assert response["X-Dtype"] == "int16"
    assert response["X-Spacing"] == "5,0.9,0.8"
    center, width = (float(v) for v in response["X-Window"].split(","))
    assert (center, width) == pytest.approx((series.window_center, series.window_width))
    assert response["X-Value-Range"] == "-50,54"
    assert "immutable" in response["Cache-Control"]
    decoded = np.frombuffer(response.content, dtype="<i2").reshape(3, 5, 7)
    assert np.array_equal(decoded, array)


def test_raw_float_volume_stays_float32(api_client_for, neurologist, phantom_series) -> None:
    adc = phantom_series["ADC"]
    response = api_client_for(neurologist).get(f"/api/series/{adc.pk}/volume.raw")
    assert response["X-Dtype"] == "float32"
    shape = tuple(int(n) for n in response["X-Shape"].split(","))
    decoded = np.frombuffer(response.content, dtype="<f4").reshape(shape)
    assert np.array_equal(decoded, adc.case.phantom.images["ADC"])


def test_raw_whole_number_floats_become_int16(api_client_for, neurologist) -> None:
    case = CaseFactory(code="SA-0001", created_by=neurologist)
    array = np.round(np.linspace(0, 900, 2 * 4 * 4)).astype(np.float32).reshape(2, 4, 4)
    series = _int_series(case, array, "2.25.2")
    response = api_client_for(neurologist).get(f"/api/series/{series.pk}/slices/1.raw")
    assert response["X-Dtype"] == "int16"
    assert response["X-Shape"] == "4,4"
    assert response["X-Slice"] == "1"
    assert np.array_equal(np.frombuffer(response.content, "<i2").reshape(4, 4), array[1])


def test_raw_out_of_int16_range_is_float32(api_client_for, neurologist) -> None:
    case = CaseFactory(code="SA-0001", created_by=neurologist)
    array = np.array([[[0, 40000]]], dtype=np.int32)
    series = _int_series(case, array, "2.25.3")
    response = api_client_for(neurologist).get(f"/api/series/{series.pk}/volume.raw")
    assert response["X-Dtype"] == "float32"
    assert np.frombuffer(response.content, "<f4").tolist() == [0.0, 40000.0]


def test_raw_slice_etag_and_304(api_client_for, neurologist, phantom_series) -> None:
    dwi = phantom_series["DWI"]
    client = api_client_for(neurologist)
    url = f"/api/series/{dwi.pk}/slices/3.raw"
    first = client.get(url)
    assert first.status_code == 200
    shape = tuple(int(n) for n in first["X-Shape"].split(","))
    assert shape == (64, 64)
    decoded = np.frombuffer(first.content, dtype=first["X-Dtype"]).reshape(shape)
    assert np.array_equal(decoded, dwi.case.phantom.images["DWI"][3])
    etag = first["ETag"]
    assert dwi.volume.sha256[:32] in etag and "z3" in etag
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304
    assert client.get(url, HTTP_IF_NONE_MATCH=f'"other", W/{etag}').status_code == 304
    assert client.get(url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    other = client.get(f"/api/series/{dwi.pk}/slices/4.raw")
    assert other["ETag"] != etag
    assert_error(client.get(f"/api/series/{dwi.pk}/slices/8.raw"), 404)


def test_png_slice(api_client_for, neurologist, phantom_series) -> None:
    flair = phantom_series["FLAIR"]
    client = api_client_for(neurologist)
    response = client.get(f"/api/series/{flair.pk}/slices/4.png", HTTP_ACCEPT="image/png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.mode == "L" and image.size == (64, 64)
    expected = rendering.window_to_uint8(
        flair.case.phantom.images["FLAIR"][4], flair.window_center, flair.window_width
    )
    assert np.array_equal(np.asarray(image), expected)
    assert (
        client.get(
            f"/api/series/{flair.pk}/slices/4.png", HTTP_IF_NONE_MATCH=response["ETag"]
        ).status_code
        == 304
    )


def test_png_window_and_thumbnail(api_client_for, neurologist, phantom_series) -> None:
    dwi = phantom_series["DWI"]
    client = api_client_for(neurologist)
    plane = dwi.case.phantom.images["DWI"][4]
    lo, hi = float(plane.min()), float(plane.max())
    url = f"/api/series/{dwi.pk}/slices/4.png?wc={(lo + hi) / 2}&ww={hi - lo}"
    full = np.asarray(Image.open(io.BytesIO(client.get(url).content)))
    assert full.min() == 0 and full.max() == 255
    default = client.get(f"/api/series/{dwi.pk}/slices/4.png")
    assert default["ETag"] != client.get(url)["ETag"]
    thumb = client.get(f"/api/series/{dwi.pk}/slices/4.png?size=32")
    assert Image.open(io.BytesIO(thumb.content)).size == (32, 32)
    # a thumbnail never upscales
    big = client.get(f"/api/series/{dwi.pk}/slices/4.png?size=512")
    assert Image.open(io.BytesIO(big.content)).size == (64, 64)


@pytest.mark.parametrize(
    "query", ["ww=0", "ww=-5", "wc=abc", "wc=nan", "size=4", "size=2000", "size=1.5"]
)
def test_png_bad_parameters(api_client_for, neurologist, phantom_series, query) -> None:
    dwi = phantom_series["DWI"]
    response = api_client_for(neurologist).get(
        f"/api/series/{dwi.pk}/slices/0.png?{query}", HTTP_ACCEPT="image/png"
    )
    assert_error(response, 400)


def test_file_endpoints_need_a_visible_series(
    api_client_for, anon_client, clinician, make_user, phantom_series
) -> None:
    dwi = phantom_series["DWI"]
    urls = [
        f"/api/series/{dwi.pk}/volume.nii.gz",
        f"/api/series/{dwi.pk}/volume.raw",
        f"/api/series/{dwi.pk}/slices/0.raw",
        f"/api/series/{dwi.pk}/slices/0.png",
    ]
    for url in urls:
        assert anon_client.get(url).status_code in (401, 403)
        assert_error(api_client_for(clinician).get(url), 404)
        assert_error(api_client_for(make_user(username="norole")).get(url), 403)


def test_session_auth_works_for_images(client, neurologist, phantom_series) -> None:
    """The browser's <img> tags use the session cookie, not a token."""
    client.force_login(neurologist)
    dwi = phantom_series["DWI"]
    assert client.get(f"/api/series/{dwi.pk}/slices/2.png?size=32").status_code == 200


def _asgi_get(app, path: str, query: str = "", headers: dict | None = None):
    import asyncio

    sent: list[dict] = []
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_asgi_fast_path_replays_only_decisions_django_took(
    api_client_for, neurologist, clinician, phantom_series
) -> None:
    from rest_framework.authtoken.models import Token

    from cases.asgi import SliceFastPath

    fallback_calls: list[str] = []

    async def django_app(scope, receive, send):
        fallback_calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = SliceFastPath(django_app)
    dwi = phantom_series["DWI"]
    path = f"/api/series/{dwi.pk}/slices/2.png"
    token = Token.objects.get_or_create(user=neurologist)[0].key
    headers = {"Authorization": f"Token {token}", "Host": "localhost"}

    # nothing decided yet: Django answers
    assert _asgi_get(app, path, "size=32", headers)[0]["status"] == 418
    # the full stack authenticates, authorises, renders and caches
    via_django = api_client_for(neurologist).get(f"{path}?size=32", HTTP_HOST="localhost")
    assert via_django.status_code == 200
    fallback_calls.clear()
    start, body = _asgi_get(app, path, "size=32", headers)
    assert fallback_calls == []
    assert start["status"] == 200 and body["body"] == via_django.content
    sent_headers = dict(start["headers"])
    assert sent_headers[b"etag"].decode() == via_django["ETag"]
    assert sent_headers[b"content-type"] == b"image/png"
    assert (
        _asgi_get(app, path, "size=32", {**headers, "If-None-Match": via_django["ETag"]})[0][
            "status"
        ]
        == 304
    )
    # other parameters, another token, another host, a session: all go to Django
    for query, extra in [
        ("size=64", {}),
        ("size=2000", {}),
        ("size=32&ww=0", {}),
        ("size=32", {"Authorization": "Token nope"}),
        ("size=32", {"Host": "evil.example"}),
        ("size=32", {"Authorization": "", "Cookie": "sessionid=abc"}),
    ]:
        assert _asgi_get(app, path, query, {**headers, **extra})[0]["status"] == 418
    # a user who never passed Django's checks for this series is not served from the cache
    other_token = Token.objects.get_or_create(user=clinician)[0].key
    assert api_client_for(clinician).get(f"{path}?size=32").status_code == 404
    other = {"Authorization": f"Token {other_token}", "Host": "localhost"}
    assert _asgi_get(app, path, "size=32", other)[0]["status"] == 418
