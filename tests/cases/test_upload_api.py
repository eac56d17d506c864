"""Upload API and page: 201/202 shapes, every bad input is 400/413 and stores nothing,
background jobs, permissions."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.conf import settings
from django.test import override_settings
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cases.models import AuditEvent, Series, Study, UploadJob, Volume
from tests.cases.upload_fixtures import (
    mr_dataset,
    series_files,
    stored_files,
    uploaded,
    uploads_of,
    zip_bytes,
)
from tests.factories import CaseFactory

UPLOAD_URL = "/api/cases/{}/uploads/"


def with_limits(**limits: Any) -> override_settings:
    return override_settings(STROKEAID={**settings.STROKEAID, **limits})


def dwi_bytes() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in series_files("DWI")}


def sr_bytes() -> bytes:
    """A Basic Text SR: a DICOM object without pixels (skipped, not an error)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "SR"
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def case(neurologist: Any) -> Any:
    return CaseFactory(created_by=neurologist)


@pytest.fixture
def post(api_client_for: Callable, neurologist: Any, case: Any) -> Callable:
    client = api_client_for(neurologist)

    def _post(files: list, **data: Any) -> Any:
        return client.post(UPLOAD_URL.format(case.pk), {"files": files, **data}, format="multipart")

    return _post


def snapshot() -> tuple:
    return (
        Series.objects.count(),
        Volume.objects.count(),
        Study.objects.count(),
        UploadJob.objects.count(),
        AuditEvent.objects.filter(verb="series.uploaded").count(),
        frozenset(stored_files()),
    )


# --- success -------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_dicom_files_upload_returns_series(post: Callable, case: Any) -> None:
    response = post(uploads_of(series_files("DWI")))
    assert response.status_code == 201, response.json()
    body = response.json()
    (series,) = body["series"]
    assert series["case"] == case.pk and series["kind"] == "DWI"
    assert series["shape"] == [8, 40, 40] and len(series["spacing"]) == 3
    assert series["series_uid"].startswith("2.25.")
    assert body["skipped"] == []


@pytest.mark.django_db
def test_zip_upload_skips_non_images_with_notes(post: Callable) -> None:
    entries = {f"export/DICOM/{n}": d for n, d in dwi_bytes().items()}
    entries["export/DICOMDIR"] = b"\0" * 200
    entries["export/README.txt"] = b"viewer readme"
    entries["export/DICOM/report.dcm"] = sr_bytes()
    entries["__MACOSX/._x"] = b"junk"
    response = post([uploaded("study.zip", zip_bytes(entries))])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [s["kind"] for s in body["series"]] == ["DWI"]
    skipped = {s["file"] for s in body["skipped"]}
    assert skipped == {
        "study.zip/export/DICOMDIR",
        "study.zip/export/README.txt",
        "study.zip/export/DICOM/report.dcm",
        "study.zip/__MACOSX/._x",
    }


@pytest.mark.django_db
def test_nifti_upload_needs_kind(post: Callable, tmp_path: Path) -> None:
    import nibabel as nib
    import numpy as np

    path = tmp_path / "adc.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 5, 3), np.float32), np.diag([2, 2, 5, 1])), path)
    before = snapshot()
    response = post([uploaded("adc.nii.gz", path.read_bytes())])
    assert response.status_code == 400
    assert response.json()["extra"] == {"file": "adc.nii.gz", "field": "kind"}
    assert snapshot() == before
    # The kind in any case, as a script might write it.
    response = post([uploaded("adc.nii.gz", path.read_bytes())], kind="adc")
    assert response.status_code == 201
    (series,) = response.json()["series"]
    assert series["kind"] == "ADC" and series["source"] == "nifti"
    assert series["shape"] == [3, 5, 4] and series["spacing"] == [5.0, 2.0, 2.0]


# --- bad input: 400/413, the error shape, nothing stored -----------------------------------------
def _truncated() -> bytes:
    data = next(iter(dwi_bytes().values()))
    return data[: len(data) - 3000]


def _slip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("ok.dcm")
        zf.writestr(info, next(iter(dwi_bytes().values())))
        info = zipfile.ZipInfo(name)
        zf.writestr(info, b"x" * 200)
    return buf.getvalue()


def _mixed_shapes() -> list:
    files = [uploaded(f"{k}.dcm", mr_dataset(ipp=(0, 0, k), instance=k)) for k in range(3)]
    import numpy as np

    odd = mr_dataset(ipp=(0, 0, 3), instance=3, pixels=np.zeros((4, 4), np.uint16))
    return [*files, uploaded("odd.dcm", odd)]


def _no_preamble() -> bytes:
    path = get_testdata_file("no_meta.dcm", download=False)
    if path is None:
        data = next(iter(dwi_bytes().values()))
        return data[132:]
    return Path(path).read_bytes()


BAD_INPUTS: dict[str, tuple[Callable[[], list], int, str, dict]] = {
    "not dicom named .dcm": (
        lambda: [uploaded("scan.dcm", b"hello, this is not an image" * 20)], 400, "scan.dcm", {}
    ),
    "empty file": (lambda: [uploaded("empty.dcm", b"")], 400, "empty.dcm", {}),
    "truncated dicom": (lambda: [uploaded("cut.dcm", _truncated())], 400, "cut.dcm", {}),
    "no preamble": (lambda: [uploaded("raw.dcm", _no_preamble())], 400, "raw.dcm", {}),
    "mixed shapes": (_mixed_shapes, 400, "odd.dcm", {}),
    "zip slip dotdot": (lambda: [uploaded("a.zip", _slip("../../etc/x.dcm"))], 400, "a.zip", {}),
    "zip slip absolute": (lambda: [uploaded("a.zip", _slip("/etc/x.dcm"))], 400, "a.zip", {}),
    "zip slip drive": (lambda: [uploaded("a.zip", _slip("C:\\x.dcm"))], 400, "a.zip", {}),
    "zip slip backslash": (lambda: [uploaded("a.zip", _slip("..\\x.dcm"))], 400, "a.zip", {}),
    "zip bomb ratio": (
        lambda: [uploaded("bomb.zip", zip_bytes({"big.dcm": b"\0" * (6 * 1024 * 1024)}))],
        400, "bomb.zip", {},
    ),
    "zip too many entries": (
        lambda: [uploaded("many.zip", zip_bytes({f"{i}.dcm": b"x" for i in range(11)}))],
        400, "many.zip", {"ZIP_MAX_ENTRIES": 10},
    ),
    "zip total too large": (
        lambda: [uploaded("total.zip", zip_bytes(dwi_bytes()))],
        400, "total.zip", {"ZIP_MAX_TOTAL_BYTES": 20_000},
    ),
    "nested zip": (
        lambda: [uploaded("outer.zip", zip_bytes({"inner.zip": zip_bytes(dwi_bytes())}))],
        400, "outer.zip", {},
    ),
    "nested zip renamed": (
        lambda: [uploaded("outer.zip", zip_bytes({"inner.dcm": zip_bytes(dwi_bytes())}))],
        400, "outer.zip", {},
    ),
    "not a zip": (lambda: [uploaded("x.zip", b"PK\x03\x04garbage" * 10)], 400, "x.zip", {}),
    "too many files": (
        lambda: uploads_of(series_files("DWI")), 400, None, {"MAX_UPLOAD_FILES": 3}
    ),
    "too large": (
        lambda: uploads_of(series_files("DWI")), 413, None, {"MAX_UPLOAD_BYTES": 10_000}
    ),
    "one bad file among good ones": (
        lambda: [*uploads_of(series_files("ADC")), uploaded("zz.dcm", b"junk" * 100)],
        400, "zz.dcm", {},
    ),
    "only non-image objects": (lambda: [uploaded("sr.dcm", sr_bytes())], 400, "sr.dcm", {}),
    "4d nifti": (None, 400, "example4d.nii.gz", {}),  # filled in below
}  # fmt: skip


def _example4d() -> list:
    import nibabel as nib

    path = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    if not path.exists():
        pytest.skip("nibabel does not ship example4d.nii.gz here")
    return [uploaded("example4d.nii.gz", path.read_bytes())]


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_rejected_and_stores_nothing(post: Callable, name: str) -> None:
    make, status, file, limits = BAD_INPUTS[name]
    files = _example4d() if make is None else make()
    extra_data = {"kind": "DWI"} if name == "4d nifti" else {}
    before = snapshot()
    with with_limits(**limits):
        response = post(files, **extra_data)
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "extra"} and body["message"]
    if file is not None:
        assert body["extra"]["file"] == file
    else:
        assert "file" in body["extra"]
    assert snapshot() == before


@pytest.mark.django_db
def test_zip_declared_size_lie_is_caught_while_extracting(post: Callable) -> None:
    """A zip whose central directory understates an entry's size is refused on the bytes."""
    data = bytearray(zip_bytes({"a.dcm": b"A" * 5000}))
    # Patch the uncompressed size in the local header (offset 22) and central directory.
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = (100).to_bytes(4, "little")
    data[central + 24 : central + 28] = (100).to_bytes(4, "little")
    before = snapshot()
    response = post([uploaded("liar.zip", bytes(data))])
    assert response.status_code == 400
    assert response.json()["extra"]["file"] == "liar.zip"
    assert snapshot() == before


# --- background jobs -----------------------------------------------------------------------------
@pytest.mark.django_db
def test_large_upload_runs_as_a_job(
    post: Callable, api_client_for: Callable, neurologist: Any, case: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    with with_limits(ASYNC_UPLOAD_BYTES=1000):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            first = post(uploads_of(series_files("DWI")))
            duplicate = post(uploads_of(series_files("DWI")))
        assert first.status_code == duplicate.status_code == 202
        assert first.json()["job"] == duplicate.json()["job"]  # a double submit joins the job
        job_id = first.json()["job"]
        assert [f for f in stored_files() if f.startswith("staging/")]
        queued = api_client_for(neurologist).get(f"/api/uploads/{job_id}/").json()
        assert queued["status"] == "queued" and queued["series"] == []
        for callback in callbacks:
            callback()  # django-q2 in sync mode: the task runs here, for real
    body = api_client_for(neurologist).get(f"/api/uploads/{job_id}/").json()
    assert body["status"] == "done", body
    assert body["progress"] == 1.0 and body["error"] is None
    assert [s["kind"] for s in body["series"]] == ["DWI"]
    assert Series.objects.filter(case=case).count() == 1
    assert not [f for f in stored_files() if f.startswith("staging/")]
    job = UploadJob.objects.get(pk=job_id)
    assert job.file_names == [] and job.finished_at is not None


@pytest.mark.django_db
def test_failed_job_reports_the_error_and_stores_nothing(
    post: Callable, api_client_for: Callable, neurologist: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    files = [*uploads_of(series_files("ADC")), uploaded("bad.dcm", b"\0" * 2000)]
    before = snapshot()
    with with_limits(ASYNC_UPLOAD_BYTES=1000), django_capture_on_commit_callbacks(execute=True):
        response = post(files)
    assert response.status_code == 202
    body = api_client_for(neurologist).get(f"/api/uploads/{response.json()['job']}/").json()
    assert body["status"] == "failed"
    assert body["error"]["message"] and body["error"]["extra"]["file"] == "bad.dcm"
    assert body["series"] == []
    after = snapshot()
    assert after[:3] == before[:3] and after[5] == before[5]  # one job row, no series, no files


# --- permissions ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_permissions(
    api_client_for: Callable, anon_client: Any, clinician: Any, reviewer: Any,
    neurologist: Any, make_user: Callable,
) -> None:  # fmt: skip
    others = CaseFactory(created_by=neurologist)
    own = CaseFactory(created_by=clinician)

    def files() -> list:
        return uploads_of(series_files("DWI"))

    url = UPLOAD_URL.format(others.pk)
    assert api_client_for(clinician).post(url, {"files": files()}).status_code == 404
    assert api_client_for(reviewer).post(url, {"files": files()}).status_code == 403
    assert anon_client.post(url, {"files": files()}).status_code in (401, 403)
    nobody = make_user(username="norole")
    assert api_client_for(nobody).post(url, {"files": files()}).status_code == 403
    assert Series.objects.count() == 0
    mine = api_client_for(clinician).post(UPLOAD_URL.format(own.pk), {"files": files()})
    assert mine.status_code == 201
    data_manager = make_user("data_manager", username="dm2")
    assert api_client_for(data_manager).post(url, {"files": files()}).status_code == 201
    assert api_client_for(clinician).get("/api/uploads/999999/").status_code == 404


@pytest.mark.django_db
def test_job_of_another_clinicians_case_is_hidden(
    api_client_for: Callable, clinician: Any, make_user: Callable,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    own = CaseFactory(created_by=clinician)
    with with_limits(ASYNC_UPLOAD_BYTES=1000), django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(clinician).post(
            UPLOAD_URL.format(own.pk), {"files": uploads_of(series_files("DWI"))}
        )
    job_id = response.json()["job"]
    other = make_user("clinician", username="doctor2")
    assert api_client_for(other).get(f"/api/uploads/{job_id}/").status_code == 404
    assert api_client_for(clinician).get(f"/api/uploads/{job_id}/").json()["status"] == "done"


# --- the page ------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_upload_page_and_form_fallback(client: Any, neurologist: Any, case: Any) -> None:
    client.force_login(neurologist)
    page = client.get(f"/cases/{case.pk}/upload/")
    assert page.status_code == 200
    html = page.content.decode()
    markers = ['id="dropzone"', 'id="kind-select"', "js/upload.js", 'id="transfer-progress"']
    for marker in [*markers, f"/api/cases/{case.pk}/uploads/", "csrfmiddlewaretoken"]:
        assert marker in html
    response = client.post(f"/cases/{case.pk}/upload/", {"files": uploads_of(series_files("ADC"))})
    assert response.status_code == 302 and response.url == f"/cases/{case.pk}/"
    assert Series.objects.filter(case=case, kind="ADC").count() == 1
    bad = client.post(f"/cases/{case.pk}/upload/", {"files": [uploaded("x.dcm", b"no" * 100)]})
    assert bad.status_code == 400 and "x.dcm" in bad.content.decode()


@pytest.mark.django_db
def test_upload_page_hidden_from_other_clinicians(client: Any, clinician: Any, case: Any) -> None:
    client.force_login(clinician)
    assert client.get(f"/cases/{case.pk}/upload/").status_code == 404
