"""Import from PACS: QIDO-RS search and WADO-RS retrieve from a real Orthanc (its DICOMweb
plugin), over REST and in the case list's dialog (Chromium)."""

from __future__ import annotations

from typing import Any

import pydicom
import pytest

from cases.models import Case, Series
from cases.phantoms.dicom import fake_phi
from gateway.models import PacsImport, ReceivedStudy
from tests.cases.upload_fixtures import series_files
from tests.gateway.orthanc import PLUGINS

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pacs(orthanc: Any, settings: Any) -> Any:
    if not (PLUGINS / "libOrthancDicomWeb.so").exists():
        pytest.skip("Debian's orthanc-dicomweb is not installed (make test installs it)")
    settings.STROKEAID = {**settings.STROKEAID, "DICOMWEB_URL": f"{orthanc.url}/dicom-web"}
    return orthanc


def test_search_and_pull_a_study_over_rest(pacs, api_client_for, neurologist, reviewer, settings):
    files = series_files("DWI", extra_phi=True)
    pacs.upload(files)
    original = pydicom.dcmread(files[0], stop_before_pixels=True)
    client = api_client_for(neurologist)

    found = client.get("/api/pacs/studies/", {"patient_id": original.PatientID})
    assert found.status_code == 200, found.content
    (study,) = found.json()["results"]
    assert study["StudyInstanceUID"] == original.StudyInstanceUID
    assert study["NumberOfStudyRelatedInstances"] == len(files)
    assert "PatientName" not in study
    assert client.get("/api/pacs/studies/", {"patient_id": "nobody-here"}).json()["results"] == []
    assert client.get("/api/pacs/studies/", {"date": "2024-01-01"}).status_code == 400
    assert client.get("/api/pacs/studies/").status_code == 400  # no search key at all
    assert api_client_for(reviewer).get("/api/pacs/studies/", {"modality": "MR"}).status_code == 403

    started = client.post(
        "/api/pacs/imports/", {"study_uid": original.StudyInstanceUID}, format="json"
    )
    assert started.status_code == 202, started.content
    job = client.get(f"/api/pacs/imports/{started.json()['id']}/").json()
    assert job["status"] == "done", job
    assert job["retrieved"] == job["expected"] == len(files)
    case = Case.objects.get(pk=job["case"])
    assert case.code == job["case_code"] and case.created_by == neurologist
    (series,) = Series.objects.filter(case=case)
    assert series.kind == "DWI" and series.shape[0] == len(files)
    for keyword, value in fake_phi(11).items():
        if len(value) > 3 and keyword not in ("PatientSex", "PatientAge"):
            assert value not in str(series.header), keyword
    assert ReceivedStudy.objects.get().calling_ae == "WADO-RS"
    assert PacsImport.objects.get(pk=job["id"]).study_token == ""  # the UID is not kept

    # Pulled again: no second case. Not a UID: 400. Another user's job: 404.
    again = client.post(
        "/api/pacs/imports/", {"study_uid": original.StudyInstanceUID}, format="json"
    )
    assert client.get(f"/api/pacs/imports/{again.json()['id']}/").json()["case"] == case.pk
    assert Case.objects.count() == 1
    bad = client.post("/api/pacs/imports/", {"study_uid": "1.2.x"}, format="json")
    assert bad.status_code == 400
    other = api_client_for(reviewer).get(f"/api/pacs/imports/{job['id']}/")
    assert other.status_code == 404

    settings.STROKEAID = {**settings.STROKEAID, "DICOMWEB_URL": ""}
    assert client.get("/api/pacs/studies/", {"modality": "MR"}).status_code == 409


@pytest.mark.browser
def test_the_import_dialog_finds_and_pulls_a_study(page, live_server, client, pacs, neurologist):
    from tests.annotation.test_editor_browser import login

    files = series_files("DWI")
    pacs.upload(files)
    original = pydicom.dcmread(files[0], stop_before_pixels=True)
    login(page, live_server, client, neurologist)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/cases/")
    page.click("#pacs-import-open")
    page.fill("#pacs-search input[name=patient_id]", str(original.PatientID))
    page.click("#pacs-search button[type=submit]")
    row = page.wait_for_selector(f"tr[data-study='{original.StudyInstanceUID}']")
    assert str(len(files)) in row.inner_text()
    row.query_selector(".pacs-import-study").click()
    link = page.wait_for_selector("#pacs-import-case", timeout=60000)
    case = Case.objects.get()
    assert case.code in link.inner_text()
    link.click()
    page.wait_for_url(f"**/cases/{case.pk}/")
    assert not errors, errors
