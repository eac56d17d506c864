"""Studies from a real PACS (Orthanc) through the C-STORE listener into de-identified cases."""

from __future__ import annotations

import io
import json
from typing import Any

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import MRImageStorage  # type: ignore[attr-defined]

from cases import storage
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
            if len(
                found := list(ReceivedStudy.objects.exclude(state__in=["receiving", "ingesting"]))
            )
            >= n
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

    wait_until(lambda: not (spool_root() / received.study_key).exists())


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
    start_listener()
    _send(listener_port, files[3:])
    (received,) = _ingested()
    assert received.state == "ingested", received.error
    assert received.instances == len(files)
    found = list(Series.objects.filter(case_id=received.case_id))
    assert len(found) == 1, (
        received.case_id,
        list(Case.objects.values_list("id", "code")),
        list(ReceivedStudy.objects.values_list("id", "state", "case_id", "instances")),
    )
    assert found[0].shape[0] == len(files)


def test_autopredict_requests_a_prediction_of_a_complete_study(
    orthanc, start_listener, registered_model
):
    registered_model()
    start_listener(autopredict=True)
    orthanc.post("/modalities/strokeaid/store", orthanc.upload(series_files("DWI")))
    received = wait_until(
        lambda: ReceivedStudy.objects.filter(prediction_id__isnull=False).first(), timeout=120
    )
    assert received.state == "predicted"  # no destination configured: nothing to send
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


def test_the_seg_goes_back_to_the_pacs_on_the_original_uids(
    orthanc, start_listener, registered_model, store_prediction, data_manager, settings
):
    """The prediction's SEG arrives in Orthanc, references the series Orthanc holds (its
    original UIDs) and carries the predicted voxels; a destination that is down is retried."""
    import highdicom as hd
    import numpy as np
    from django.contrib.auth import get_user_model

    from gateway.services import GATEWAY_USERNAME

    settings.STROKEAID = {
        **settings.STROKEAID,
        "DICOM_DESTINATIONS": f"ORTHANC@127.0.0.1:{orthanc.dicom_port + 1}",  # nothing there
    }
    files = series_files("DWI")
    start_listener()
    orthanc_study = orthanc.upload(files)
    orthanc.post("/modalities/strokeaid/store", orthanc_study)
    (received,) = _ingested()
    received.refresh_from_db()
    assert received.linkage_key  # the original headers are kept, encrypted
    assert b"PatientName" not in storage.read_bytes(received.linkage_key)
    case = Case.objects.get(pk=received.case_id)
    dwi = case.series.get(kind="DWI")
    labels = np.zeros(tuple(dwi.shape), np.uint8)
    labels[2:5, 10:20, 12:22] = 2
    model = registered_model()
    job = store_prediction(
        case=case,
        model=model,
        labels=labels,
        etiology="cardioembolic",
        user=get_user_model().objects.get(username=GATEWAY_USERNAME),
    )
    ReceivedStudy.objects.filter(pk=received.pk).update(state="predicted", prediction_id=job.pk)
    failed = wait_until(
        lambda: ReceivedStudy.objects.filter(pk=received.pk, send_attempts__gte=1).first()
    )
    assert failed.state == "predicted" and "refused or failed" in failed.error
    # The destination comes back: the next attempt delivers.
    settings.STROKEAID = {
        **settings.STROKEAID,
        "DICOM_DESTINATIONS": f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
    }
    ReceivedStudy.objects.filter(pk=received.pk).update(next_send_at=None)
    wait_until(lambda: ReceivedStudy.objects.filter(pk=received.pk, state="sent").exists())
    series_ids = orthanc.get(f"/studies/{orthanc_study}")["Series"]
    segs = [
        s for s in series_ids if orthanc.get(f"/series/{s}")["MainDicomTags"]["Modality"] == "SEG"
    ]
    assert len(segs) == 1
    (instance,) = orthanc.get(f"/series/{segs[0]}/instances")
    seg = hd.seg.Segmentation.from_dataset(
        pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{instance['ID']}/file")))
    )
    original = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    assert seg.StudyInstanceUID == original[0].StudyInstanceUID
    (ref_series,) = seg.ReferencedSeriesSequence
    assert ref_series.SeriesInstanceUID == original[0].SeriesInstanceUID
    assert "cardioembolic" in seg.SegmentSequence[0].SegmentLabel
    # The SEG's voxels are the prediction's, on the original instances.
    by_position = sorted(original, key=lambda d: float(d.ImagePositionPatient[2]))
    volume = seg.get_volume()
    assert int(volume.array.sum()) == int((labels != 0).sum())
    assert len(by_position) == labels.shape[0]
