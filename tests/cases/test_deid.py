"""De-identification: the basic profile on datasets, and no PHI anywhere after an upload."""

from __future__ import annotations

import io
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from django.test import override_settings
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cases.dicom.deid import dataset_deidentify, descriptor_clean, uid_remap
from cases.models import Series
from cases.phantoms import PRIVATE_CREATOR, fake_phi, series_uids
from tests.cases.upload_fixtures import (
    data_dir_bytes,
    mr_dataset,
    phantom,
    series_files,
    stored_files,
    uploaded,
    uploads_of,
    zip_bytes,
)
from tests.factories import CaseFactory

UPLOAD_URL = "/api/cases/{}/uploads/"


def phi_strings(seed: int = 11) -> list[str]:
    """Every identifying string the phantom writes (name parts, ids, dates, places, UIDs)."""
    phi = fake_phi(seed)
    keys = [
        "PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "InstitutionName",
        "InstitutionAddress", "ReferringPhysicianName", "PerformingPhysicianName",
        "OperatorsName", "AccessionNumber", "StationName", "DeviceSerialNumber",
        "OtherPatientID", "RequestingPhysician", "StudyDate",
    ]  # fmt: skip
    out = set()
    for key in keys:
        value = phi[key]
        out.add(value)
        out.update(part for part in re.split(r"\^+", value) if len(part) >= 4)
    out.discard("DR")
    for kind in ("DWI", "ADC", "FLAIR"):
        out.update(series_uids(phantom(seed), kind).values())
    for path in series_files("DWI", seed=seed, extra_phi=True):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        out.add(str(ds.SOPInstanceUID))
    return sorted(out)


# --- the profile on a dataset ---------------------------------------------------------------
def test_uid_remap_is_stable_keyed_and_valid() -> None:
    a = uid_remap("1.2.840.113619.2.55.3.1234", secret="k1")
    assert a == uid_remap("1.2.840.113619.2.55.3.1234", secret="k1")
    assert a != uid_remap("1.2.840.113619.2.55.3.1234", secret="k2")
    assert a != uid_remap("1.2.840.113619.2.55.3.1235", secret="k1")
    assert re.fullmatch(r"2\.25\.(0|[1-9]\d*)", a) and len(a) <= 64


def test_basic_profile_on_pydicom_sample() -> None:
    path = get_testdata_file("MR_small.dcm", download=False)
    ds = pydicom.dcmread(path)
    original = {k: str(ds.get(k)) for k in ("StudyInstanceUID", "SeriesInstanceUID",
                                            "SOPInstanceUID", "FrameOfReferenceUID")}  # fmt: skip
    ds.add_new(0x00111010, "LO", "private-ish")  # odd group: private
    dataset_deidentify(ds, secret="s")
    for keyword in ("PatientName", "PatientID", "InstitutionName", "StudyID", "StudyDate",
                    "NameOfPhysiciansReadingStudy", "OperatorsName", "StationName",
                    "DeviceSerialNumber", "ImageComments", "InstanceCreatorUID"):  # fmt: skip
        assert keyword not in ds, keyword
    assert not any(elem.tag.is_private for elem in ds)
    for keyword, value in original.items():
        assert str(ds[keyword].value) == uid_remap(value, secret="s")
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.4"  # a class UID identifies nobody
    assert ds.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert "113100" in codes and "113108" in codes
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientSex == "F"  # retained patient characteristics


def test_nested_sequences_private_blocks_and_person_names_are_removed() -> None:
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.SeriesDescription = "Jane Doe DWI"
    ds.PatientAge = "093Y"
    inner = Dataset()
    inner.PatientName = "DOE^JANE"
    inner.AccessionNumber = "A123"
    inner.ReferencedSOPInstanceUID = "1.2.3.4"
    deeper = Dataset()
    deeper.PersonName = "SMITH^JOHN"
    deeper.ContentDate = "20240101"
    inner.ContentSequence = Sequence([deeper])
    block = inner.private_block(0x0029, "ACME 1.0", create=True)
    block.add_new(0x01, "LO", "DOE^JANE")
    ds.ReferencedImageSequence = Sequence([inner])
    dataset_deidentify(ds, secret="s")
    dumped = str(ds)
    assert "DOE" not in dumped.upper() and "SMITH" not in dumped and "A123" not in dumped
    assert "20240101" not in dumped
    item = ds.ReferencedImageSequence[0]
    assert item.ReferencedSOPInstanceUID == uid_remap("1.2.3.4", secret="s")
    assert not any(elem.tag.is_private for elem in item)
    assert ds.SeriesDescription == "DWI"
    assert ds.PatientAge == "090Y"


def test_descriptor_clean_whole_words_only() -> None:
    assert descriptor_clean("FLAIR li", ["LI"]) == "FLAIR"
    assert descriptor_clean("Ivanov_DWI", ["IVANOV"]) == "DWI"


# --- nothing identifying reaches storage or the database ------------------------------------
def _assert_no_phi(strings: list[str]) -> None:
    blob = data_dir_bytes()
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    text = dump.getvalue()
    assert len(text) > 100
    leaks = [s for s in strings if s.encode() in blob or s in text]
    assert not leaks, f"PHI found after ingestion: {leaks}"


@pytest.mark.django_db
def test_no_phi_in_data_dir_or_database_after_upload(api_client_for, neurologist) -> None:
    case = CaseFactory(created_by=neurologist)
    client = api_client_for(neurologist)
    files = series_files("DWI", extra_phi=True)
    response = client.post(
        UPLOAD_URL.format(case.pk), {"files": uploads_of(files)}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    zipped = zip_bytes(
        {f"DICOM/{p.name}": p.read_bytes() for p in series_files("ADC", extra_phi=True)}
    )
    response = client.post(
        UPLOAD_URL.format(case.pk), {"files": [uploaded("study.zip", zipped)]}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    # The PHI really was in the input (else the test would prove nothing).
    raw = b"".join(p.read_bytes() for p in files)
    strings = phi_strings()
    assert all(s.encode() in raw for s in fake_phi(11)["PatientName"].split("^"))
    assert PRIVATE_CREATOR.encode() in raw
    _assert_no_phi(strings)
    header = Series.objects.get(case=case, kind="DWI").header
    assert header["deidentification"]["PatientIdentityRemoved"] == "YES"
    assert PRIVATE_CREATOR not in str(header)


@pytest.mark.django_db
def test_async_upload_leaves_no_phi_and_no_staging(
    api_client_for, neurologist, django_capture_on_commit_callbacks
) -> None:
    case = CaseFactory(created_by=neurologist)
    files = series_files("FLAIR", extra_phi=True)
    with (
        override_settings(STROKEAID={**_settings(), "ASYNC_UPLOAD_BYTES": 1}),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api_client_for(neurologist).post(
            UPLOAD_URL.format(case.pk), {"files": uploads_of(files)}, format="multipart"
        )
    assert response.status_code == 202
    assert Series.objects.filter(case=case, kind="FLAIR").count() == 1
    assert not [f for f in stored_files() if f.startswith("staging")]
    _assert_no_phi(phi_strings())


def _settings() -> dict:
    from django.conf import settings

    return dict(settings.STROKEAID)


@pytest.mark.django_db
def test_uids_remap_consistently_across_uploads(api_client_for, neurologist) -> None:
    client = api_client_for(neurologist)
    first, second = CaseFactory(created_by=neurologist), CaseFactory(created_by=neurologist)
    r1 = client.post(UPLOAD_URL.format(first.pk), {"files": uploads_of(series_files("DWI"))},
                     format="multipart")  # fmt: skip
    r2 = client.post(UPLOAD_URL.format(second.pk), {"files": uploads_of(series_files("DWI"))},
                     format="multipart")  # fmt: skip
    assert r1.status_code == r2.status_code == 201
    s1, s2 = Series.objects.get(case=first), Series.objects.get(case=second)
    assert s1.series_uid == s2.series_uid
    assert s1.header["StudyInstanceUID"] == s2.header["StudyInstanceUID"]
    assert s1.header["per_slice"]["SOPInstanceUID"] == s2.header["per_slice"]["SOPInstanceUID"]
    original = series_uids(phantom(), "DWI")["SeriesInstanceUID"]
    assert s1.series_uid == uid_remap(original, secret=_settings()["UID_SECRET"])
    # The ADC of the same study joins the same study row.
    r3 = client.post(UPLOAD_URL.format(first.pk), {"files": uploads_of(series_files("ADC"))},
                     format="multipart")  # fmt: skip
    assert r3.status_code == 201
    assert Series.objects.get(case=first, kind="ADC").study_id == s1.study_id
    # Uploading the same series twice to a case is refused.
    again = client.post(UPLOAD_URL.format(first.pk), {"files": uploads_of(series_files("DWI"))},
                        format="multipart")  # fmt: skip
    assert again.status_code == 400
    assert "already" in again.json()["message"]


@pytest.mark.django_db
def test_nifti_free_text_is_never_stored(api_client_for, neurologist, tmp_path: Path) -> None:
    image = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    image.header["descrip"] = b"Patient ZEBRAFINCH born 19450101"
    image.header["aux_file"] = b"QUOKKA-MRN-99"
    image.header["intent_name"] = b"WOMBATX"
    image.header["db_name"] = b"PLATYPUS1"
    path = tmp_path / "t.nii.gz"
    nib.save(image, path)
    case = CaseFactory(created_by=neurologist)
    response = api_client_for(neurologist).post(
        UPLOAD_URL.format(case.pk),
        {"files": [uploaded("t.nii.gz", path.read_bytes())], "kind": "FLAIR"},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()["series"][0]
    assert body["shape"] == [4, 3, 2] and body["kind"] == "FLAIR"
    _assert_no_phi(["ZEBRAFINCH", "19450101", "QUOKKA", "WOMBATX", "PLATYPUS1"])


# --- burned-in annotation -------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"BurnedInAnnotation": "YES"}, "BurnedInAnnotation"),
        ({"ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"]}, "screen"),
        ({"ImageType": ["DERIVED", "SECONDARY"]}, "secondary"),
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.7"}, "secondary capture"),
        ({"ImageType": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]}, ""),
        ({"BurnedInAnnotation": "NO"}, ""),
    ],
)
def test_burned_in_annotation_is_quarantined(
    api_client_for, neurologist, attrs: dict, reason: str
) -> None:
    case = CaseFactory(created_by=neurologist)
    files = [
        uploaded(f"{k}.dcm", mr_dataset(ipp=(0, 0, 2.0 * k), instance=k, **attrs)) for k in range(3)
    ]
    response = api_client_for(neurologist).post(
        UPLOAD_URL.format(case.pk), {"files": files}, format="multipart"
    )
    assert response.status_code == 201, response.json()
    (series,) = response.json()["series"]
    assert series["quarantined"] is bool(reason)
    assert reason.lower() in series["quarantine_reason"].lower()
