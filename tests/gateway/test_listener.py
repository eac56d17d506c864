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
from cases.models import Case, Label, Series
from cases.phantoms.dicom import fake_phi
from gateway.models import ReceivedStudy
from inference.models import PredictionJob
from tests.cases.upload_fixtures import series_files
from tests.dciodvfy import dciodvfy_errors
from tests.gateway.conftest import wait_until
from tests.gateway.orthanc import PLUGINS

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


def _gateway_case_with_prediction(orthanc: Any, registered_model: Any, store_prediction: Any):
    """A study Orthanc pushed, ingested, with a known stored prediction: (study row, Orthanc
    study id, original files, label volume)."""
    import numpy as np
    from django.contrib.auth import get_user_model

    from gateway.services import GATEWAY_USERNAME

    files = series_files("DWI")
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
    labels[-1, 25:29, 25:29] = 4  # a second lesion, of another label, on the last slice
    job = store_prediction(
        case=case,
        model=registered_model(),
        labels=labels,
        etiology="cardioembolic",
        user=get_user_model().objects.get(username=GATEWAY_USERNAME),
        confidence=0.8,
    )
    ReceivedStudy.objects.filter(pk=received.pk).update(state="predicted", prediction_id=job.pk)
    return received, orthanc_study, files, labels, dwi


def _results_in(orthanc: Any, orthanc_study: str) -> dict[str, Any]:
    """The SEG and SR Orthanc holds in the study, read back with highdicom."""
    import highdicom as hd

    found: dict[str, Any] = {}
    for series in orthanc.get(f"/studies/{orthanc_study}")["Series"]:
        modality = orthanc.get(f"/series/{series}")["MainDicomTags"]["Modality"]
        if modality not in ("SEG", "SR"):
            continue
        (instance,) = orthanc.get(f"/series/{series}/instances")
        data = orthanc.get(f"/instances/{instance['ID']}/file")
        assert dciodvfy_errors(data) == [], modality
        ds = pydicom.dcmread(io.BytesIO(data))
        assert modality not in found
        found[modality] = (
            hd.seg.Segmentation.from_dataset(ds)
            if modality == "SEG"
            else hd.sr.Comprehensive3DSR.from_dataset(ds)
        )
    return found


def test_seg_and_sr_go_back_to_the_pacs_on_the_original_uids(
    orthanc, start_listener, registered_model, store_prediction, settings, client, data_manager
):
    """The prediction's SEG and SR arrive in Orthanc, reference the series Orthanc holds (its
    original UIDs) and carry the predicted voxels and figures; a destination that is down is
    retried, shows as failed, and delivers when it comes back."""
    import numpy as np

    from cases.dicom.deid import uid_remap
    from strokeaid_site.conf import app_settings

    settings.STROKEAID = {
        **settings.STROKEAID,
        "DICOM_DESTINATIONS": f"ORTHANC@127.0.0.1:{orthanc.dicom_port + 1}",  # nothing there
    }
    start_listener()
    received, orthanc_study, files, labels, dwi = _gateway_case_with_prediction(
        orthanc, registered_model, store_prediction
    )
    failed = wait_until(
        lambda: ReceivedStudy.objects.filter(pk=received.pk, send_attempts__gte=1).first()
    )
    assert failed.state == "predicted" and "refused or failed" in failed.error
    client.force_login(data_manager)
    panel = client.get(f"/cases/{received.case_id}/").content.decode()
    assert 'id="gateway-panel"' in panel and "Sending failed" in panel
    page = client.get("/pacs/").content.decode()
    assert f"ORTHANC@127.0.0.1:{orthanc.dicom_port + 1}" in page and "refused or failed" in page
    # The destination comes back: the next attempt delivers.
    settings.STROKEAID = {
        **settings.STROKEAID,
        "DICOM_DESTINATIONS": f"ORTHANC@127.0.0.1:{orthanc.dicom_port}",
    }
    ReceivedStudy.objects.filter(pk=received.pk).update(next_send_at=None)
    wait_until(lambda: ReceivedStudy.objects.filter(pk=received.pk, state="sent").exists())
    assert "Results sent" in client.get(f"/cases/{received.case_id}/").content.decode()
    results = _results_in(orthanc, orthanc_study)
    seg, sr = results["SEG"], results["SR"]
    original = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    assert seg.StudyInstanceUID == sr.StudyInstanceUID == original[0].StudyInstanceUID
    assert sr.PatientID == original[0].PatientID  # filed with the patient's images
    (ref_series,) = seg.ReferencedSeriesSequence
    assert ref_series.SeriesInstanceUID == original[0].SeriesInstanceUID
    titles = [item.SegmentLabel for item in seg.SegmentSequence]
    names = dict(Label.objects.filter(label_set__is_active=True).values_list("value", "name"))
    assert titles == [f"Infarct, {names[2]}", f"Infarct, {names[4]}"]
    # Frame by frame, the SEG's voxels are the prediction's on the original instance that
    # holds that slice.
    per_slice = dwi.header["per_slice"]["SOPInstanceUID"]
    secret = app_settings.UID_SECRET
    for ds in original:
        z = per_slice.index(uid_remap(str(ds.SOPInstanceUID), secret=secret))
        frame = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[str(ds.SOPInstanceUID)],
            combine_segments=True,
            relabel=True,
        )[0]
        expected = np.select([labels[z] == 2, labels[z] == 4], [1, 2], 0)
        assert np.array_equal(frame, expected), z
    # The SR: a volume per segment, the total, the lesion count and the etiology.
    voxel_ml = float(np.prod(dwi.spacing)) / 1000.0
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert len(groups) == 2
    volumes = sorted(g.get_measurements()[0].value for g in groups)
    expected_volumes = sorted(float(np.count_nonzero(labels == v)) * voxel_ml for v in (2, 4))
    assert volumes == pytest.approx(expected_volumes, abs=1e-3)
    (case_group,) = sr.content.get_image_measurement_groups()
    figures = {m.name.meaning: float(m.value) for m in case_group.get_measurements()}
    assert figures["Number of ischemic lesions"] == 2
    assert figures["Confidence of the etiology"] == pytest.approx(80.0)
    assert figures["Total ischemic lesion volume"] == pytest.approx(sum(expected_volumes), abs=1e-3)
    (finding,) = case_group.get_qualitative_evaluations()
    assert finding.value.meaning == "cardioembolic"


def test_results_go_to_a_dicomweb_destination_by_stow_rs(
    orthanc, start_listener, registered_model, store_prediction, settings
):
    if not (PLUGINS / "libOrthancDicomWeb.so").exists():
        pytest.skip("Debian's orthanc-dicomweb is not installed (make test installs it)")
    settings.STROKEAID = {
        **settings.STROKEAID,
        "DICOM_DESTINATIONS": f"{orthanc.url}/dicom-web",
    }
    start_listener()
    received, orthanc_study, *_rest = _gateway_case_with_prediction(
        orthanc, registered_model, store_prediction
    )
    sent = wait_until(lambda: ReceivedStudy.objects.filter(pk=received.pk, state="sent").first())
    assert sent.delivered_to == [f"{orthanc.url}/dicom-web"]
    assert set(_results_in(orthanc, orthanc_study)) == {"SEG", "SR"}
