"""Studies from a real PACS (Orthanc) through the C-STORE listener into de-identified cases."""

from __future__ import annotations

import json
from typing import Any

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage  # type: ignore[attr-defined]

from cases.models import Case, Series
from cases.phantoms.dicom import fake_phi
from gateway.models import ReceivedStudy
from inference.models import PredictionJob
from tests.cases.upload_fixtures import series_files
from tests.gateway.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]
SEED = 11  # tests.cases.upload_fixtures' phantom


def _ingested(n: int = 1) -> list[ReceivedStudy]:
    return wait_until(
        lambda: (
            found
            if len(found := list(ReceivedStudy.objects.exclude(state="receiving"))) >= n
            else None
        )
    )


def test_orthanc_pushes_a_study_that_becomes_a_deidentified_case(orthanc, start_listener):
    start_listener()
    files = series_files("DWI", extra_phi=True)
    study = orthanc.upload(files)
    orthanc.post("/modalities/strokeaid/store", study)
    (received,) = _ingested()
    assert received.state == "ingested", received.error
    assert received.calling_ae == "ORTHANC" and received.instances == len(files)
    case = Case.objects.get(pk=received.case_id)
    assert case.code.startswith("GW-")
    (series,) = Series.objects.filter(case=case)
    assert series.kind == "DWI" and series.shape[0] == len(files)
    stored = json.dumps(series.header)
    for keyword, value in fake_phi(SEED).items():
        if len(value) > 3 and keyword not in ("PatientSex", "PatientAge"):
            assert value not in stored, keyword
    original = pydicom.dcmread(files[0], stop_before_pixels=True)
    assert original.StudyInstanceUID not in stored and original.SeriesInstanceUID not in stored
    # The spool is emptied once the series are stored.
    from gateway.services import spool_root

    assert not (spool_root() / received.study_key).exists()


def test_an_unlisted_calling_ae_is_rejected_at_association(start_listener, listener_port):
    start_listener()
    scu = AE(ae_title="INTRUDER")
    scu.add_requested_context(MRImageStorage)
    assoc = scu.associate("127.0.0.1", listener_port, ae_title="STROKEAID")
    assert not assoc.is_established and assoc.is_rejected
    assert not ReceivedStudy.objects.exists()


def test_a_study_sent_twice_makes_one_case(orthanc, start_listener):
    start_listener()
    study = orthanc.upload(series_files("DWI"))
    orthanc.post("/modalities/strokeaid/store", study)
    (first,) = _ingested()
    orthanc.post("/modalities/strokeaid/store", study)
    wait_until(lambda: ReceivedStudy.objects.get(pk=first.pk).duplicates >= 1)
    assert Case.objects.filter(code__startswith="GW-").count() == 1
    assert ReceivedStudy.objects.count() == 1


def _send(port: int, files: list[Any]) -> None:
    scu = AE(ae_title="ORTHANC")
    scu.add_requested_context(MRImageStorage)
    assoc = scu.associate("127.0.0.1", port, ae_title="STROKEAID")
    assert assoc.is_established
    for path in files:
        status = assoc.send_c_store(pydicom.dcmread(path))
        assert status.Status == 0x0000
    assoc.release()


def test_a_listener_stopped_mid_study_completes_it_after_a_restart(start_listener, listener_port):
    files = series_files("DWI")
    first = start_listener(study_timeout=3600.0)
    _send(listener_port, files[:3])
    first.stop()  # killed before the study was complete
    assert ReceivedStudy.objects.get().state == "receiving"
    start_listener(study_timeout=1.0)
    _send(listener_port, files[3:])
    (received,) = _ingested()
    assert received.state == "ingested" and received.instances == len(files)
    assert Series.objects.get(case_id=received.case_id).shape[0] == len(files)


def test_autopredict_requests_a_prediction_of_a_complete_study(
    orthanc, start_listener, registered_model
):
    registered_model()
    start_listener(autopredict=True)
    orthanc.post("/modalities/strokeaid/store", orthanc.upload(series_files("DWI")))
    received = wait_until(
        lambda: ReceivedStudy.objects.filter(state="predicted").first(), timeout=120
    )
    job = PredictionJob.objects.get(pk=received.prediction_id)
    assert job.case_id == received.case_id


def test_the_pacs_page_lists_received_studies_without_patient_data(
    orthanc, start_listener, client, data_manager, neurologist
):
    start_listener()
    files = series_files("DWI", extra_phi=True)
    orthanc.post("/modalities/strokeaid/store", orthanc.upload(files))
    (received,) = _ingested()
    client.force_login(neurologist)
    assert client.get("/pacs/").status_code == 403
    client.force_login(data_manager)
    page = client.get("/pacs/").content.decode()
    case = Case.objects.get(pk=received.case_id)
    assert case.code in page and "ORTHANC" in page and "Ingested" in page
    for value in fake_phi(SEED).values():
        if len(value) > 3:
            assert value not in page
