"""DICOMweb: STOW-RS into the platform (a real DICOMweb client against the running server)
and studies pulled from a real PACS (Orthanc's DICOMweb plugin) by QIDO-RS / WADO-RS."""

from __future__ import annotations

from typing import Any

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from rest_framework.authtoken.models import Token

from cases.models import Case, Series
from cases.phantoms.dicom import fake_phi
from gateway.dicomweb import CANNOT_UNDERSTAND, DOES_NOT_MATCH
from gateway.models import ReceivedStudy
from tests.cases.upload_fixtures import series_files

pytestmark = [pytest.mark.django_db(transaction=True)]


def _multipart(parts: list[bytes]) -> tuple[bytes, str]:
    """A multipart/related body (PS3.18 8.6.1.2), written out as a client would."""
    boundary = "strokeaid-test-boundary"
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n"
        for data in parts
    )
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def _token(user: Any) -> dict[str, str]:
    token, _created = Token.objects.get_or_create(user=user)
    return {"Authorization": f"Token {token.key}"}


def test_stow_rs_from_a_dicomweb_client_makes_one_deidentified_case(live_server, neurologist):
    files = series_files("DWI", extra_phi=True)
    datasets = [pydicom.dcmread(p) for p in files]
    client = DICOMwebClient(url=f"{live_server.url}/dicomweb", headers=_token(neurologist))
    answer = client.store_instances(datasets=datasets)
    stored = {str(item.ReferencedSOPInstanceUID) for item in answer.ReferencedSOPSequence}
    assert stored == {str(ds.SOPInstanceUID) for ds in datasets}
    assert "FailedSOPSequence" not in answer
    (received,) = ReceivedStudy.objects.all()
    assert received.state == "ingested" and received.calling_ae == "STOW-RS"
    case = Case.objects.get(pk=received.case_id)
    assert case.created_by == neurologist and case.code.startswith("GW-")
    (series,) = Series.objects.filter(case=case)
    assert series.kind == "DWI" and series.shape[0] == len(files)
    for keyword, value in fake_phi(11).items():
        if len(value) > 3 and keyword not in ("PatientSex", "PatientAge"):
            assert value not in str(series.header), keyword
    # The same study again: stored (nothing new), no second case.
    client.store_instances(datasets=datasets[:3], study_instance_uid=datasets[0].StudyInstanceUID)
    assert Case.objects.filter(code__startswith="GW-").count() == 1


def test_stow_rs_reports_each_failed_instance_and_stores_nothing_wrong(
    live_server, neurologist, reviewer
):
    files = series_files("DWI")
    good = files[0].read_bytes()
    other_study = series_files("DWI", seed=12)[0].read_bytes()
    url = f"{live_server.url}/dicomweb/studies"
    study_uid = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID

    body, content_type = _multipart([b"not dicom at all", other_study])
    response = requests.post(
        f"{url}/{study_uid}",
        data=body,
        headers={**_token(neurologist), "Content-Type": content_type},
        timeout=60,
    )
    assert response.status_code == 409, response.text  # none stored
    assert response.headers["Content-Type"].startswith("application/dicom+json")
    failed = pydicom.Dataset.from_json(response.json()).FailedSOPSequence
    assert sorted(int(item.FailureReason) for item in failed) == sorted(
        [CANNOT_UNDERSTAND, DOES_NOT_MATCH]
    )
    assert not ReceivedStudy.objects.exists() and not Case.objects.exists()

    body, content_type = _multipart([good, b"\x00" * 200])
    response = requests.post(
        url, data=body, headers={**_token(neurologist), "Content-Type": content_type}, timeout=60
    )
    assert response.status_code == 202, response.text  # some stored
    answer = pydicom.Dataset.from_json(response.json())
    assert len(answer.ReferencedSOPSequence) == 1 and len(answer.FailedSOPSequence) == 1

    # Not multipart/related: 415; no token: 401; a role that may not create cases: 403.
    wrong = requests.post(
        url, data=good, headers={**_token(neurologist), "Content-Type": "application/dicom"}
    )
    assert wrong.status_code == 415 and "multipart/related" in wrong.json()["message"]
    assert requests.post(url, data=body, headers={"Content-Type": content_type}).status_code in (
        401,
        403,
    )
    forbidden = requests.post(
        url, data=body, headers={**_token(reviewer), "Content-Type": content_type}, timeout=60
    )
    assert forbidden.status_code == 403
    assert Case.objects.count() == 1
