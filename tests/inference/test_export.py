"""Exports end to end: API (202, status, download), nnU-Net layout rules, DICOM SEG read back
with highdicom, voxel-by-voxel equality with the stored masks, reproducibility, no PHI."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import zipfile
from typing import Any

import highdicom as hd
import nibabel as nib
import numpy as np
import pydicom
import pytest

from annotation.models import Annotation
from cases import storage
from cases.models import Series
from inference.models import ExportJob
from tests.dciodvfy import dciodvfy_errors


def _export(client: Any, capture: Any, body: dict[str, Any]) -> dict[str, Any]:
    with capture(execute=True):
        response = client.post("/api/exports/", body, format="json")
    assert response.status_code == 202, response.json()
    export_id = response.json()["id"]
    detail = client.get(f"/api/exports/{export_id}/").json()
    assert detail["status"] == "done", detail
    assert detail["error"] is None and detail["progress"] == 1.0
    return detail


def _zip(client: Any, detail: dict[str, Any]) -> zipfile.ZipFile:
    response = client.get(detail["download_url"])
    assert response.status_code == 200
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == response["X-Checksum-SHA256"]
    return zipfile.ZipFile(io.BytesIO(data))


def _mask_of(case: Any) -> tuple[np.ndarray, Series]:
    ann = Annotation.objects.select_related("current_revision", "series").get(series__case=case)
    return storage.read_array(ann.current_revision.key), ann.series


@pytest.fixture
def three_cases(make_phantom_case: Any) -> list[Any]:
    return [
        make_phantom_case("cardioembolic", seed=1),
        make_phantom_case("lacunar", seed=2),
        make_phantom_case("atherothrombotic", seed=3),
    ]


def test_nnunet_export_layout_and_voxels(
    three_cases: list[Any],
    make_phantom_case: Any,
    data_manager: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    no_flair = make_phantom_case("cryptogenic", seed=4, kinds=("DWI", "ADC"))
    client = api_client_for(data_manager)
    workup = {"atrial_fibrillation": True, "stenosis_50": False, "age": 77, "sex": "F"}
    assert (
        client.put(f"/api/cases/{three_cases[0].pk}/workup/", workup, format="json").status_code
        == 200
    )
    detail = _export(
        client, django_capture_on_commit_callbacks, {"format": "nnunet", "cases": None}
    )
    archive = _zip(client, detail)
    names = archive.namelist()
    assert names == sorted(names)
    assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
    manifest = json.loads(archive.read("manifest.json"))
    # Every file's checksum is in the manifest, and right.
    assert set(manifest["files"]) == set(names) - {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest

    root = "Dataset501_StrokeAID"
    dataset = json.loads(archive.read(f"{root}/dataset.json"))
    for key in ("channel_names", "labels", "numTraining", "file_ending"):
        assert key in dataset
    assert dataset["file_ending"] == ".nii.gz"
    n_channels = len(dataset["channel_names"])
    assert list(dataset["channel_names"]) == [str(i) for i in range(n_channels)]
    assert dataset["channel_names"] == {"0": "DWI", "1": "ADC", "2": "FLAIR"}
    values = sorted(dataset["labels"].values())
    assert dataset["labels"]["background"] == 0 and values == list(range(len(values)))
    labels_tr = [n for n in names if n.startswith(f"{root}/labelsTr/")]
    labels_ts = [n for n in names if n.startswith(f"{root}/labelsTs/")]
    assert dataset["numTraining"] == len(labels_tr)
    # The case without FLAIR is skipped with a note, never zero-filled.
    assert f"case{no_flair.pk:05d}" not in " ".join(names)
    assert any(n["case"] == f"case{no_flair.pk:05d}" for n in manifest["notes"])
    assert len(labels_tr) + len(labels_ts) == 3

    for case in three_cases:
        stem = f"case{case.pk:05d}"
        folder = "Tr" if f"{root}/labelsTr/{stem}.nii.gz" in names else "Ts"
        label = nib.Nifti1Image.from_bytes(
            gzip.decompress(archive.read(f"{root}/labels{folder}/{stem}.nii.gz"))
        )
        mask, series = _mask_of(case)
        assert np.array_equal(np.asarray(label.dataobj).transpose(2, 1, 0), mask)
        assert np.allclose(label.affine, np.asarray(series.affine))
        for channel in range(n_channels):
            image = nib.Nifti1Image.from_bytes(
                gzip.decompress(archive.read(f"{root}/images{folder}/{stem}_{channel:04d}.nii.gz"))
            )
            assert image.shape == label.shape and np.allclose(image.affine, label.affine)
        dwi = Series.objects.select_related("volume").get(case=case, kind="DWI")
        image = nib.Nifti1Image.from_bytes(
            gzip.decompress(archive.read(f"{root}/images{folder}/{stem}_0000.nii.gz"))
        )
        assert np.array_equal(
            np.asarray(image.dataobj).transpose(2, 1, 0), storage.read_array(dwi.volume.key)
        )

    csv_text = archive.read("labels.csv").decode()
    assert csv_text.splitlines()[0] == (
        "case,code,etiology,confirmed,split,annotator,revision,revision_id,state"
    )
    # ``revision`` is the annotation's own revision number, ``revision_id`` the global row id.
    rows = {row["case"]: row for row in csv.DictReader(io.StringIO(csv_text))}
    for case in three_cases:
        revision = (
            Annotation.objects.select_related("current_revision")
            .get(series__case=case)
            .current_revision
        )
        row = rows[f"case{case.pk:05d}"]
        assert (row["revision"], row["revision_id"]) == (str(revision.number), str(revision.pk))
    # The work-up beside the labels (empty = unknown); dataset.json stays nnU-Net's own.
    clinical = {
        row["case"]: row
        for row in csv.DictReader(io.StringIO(archive.read("clinical.csv").decode()))
    }
    assert set(clinical) == set(rows)
    first = clinical[f"case{three_cases[0].pk:05d}"]
    assert (first["atrial_fibrillation"], first["stenosis_50"], first["age"], first["sex"]) == (
        "true",
        "false",
        "77",
        "F",
    )
    assert first["cardiac_workup"] == "" and clinical[f"case{three_cases[1].pk:05d}"]["age"] == ""
    assert "atrial_fibrillation" not in json.dumps(dataset)
    splits = json.loads(archive.read("splits.json"))
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == sorted(
        f"case{c.pk:05d}" for c in three_cases
    )
    # No user name anywhere (annotators are pseudonymous codes).
    for name in names:
        content = archive.read(name)
        assert data_manager.username.encode() not in content
    assert f"annotator-{data_manager.pk}" in csv_text


def test_export_is_reproducible(
    three_cases: list[Any],
    data_manager: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(data_manager)
    ids = [c.pk for c in three_cases]
    first = _zip(
        client,
        _export(client, django_capture_on_commit_callbacks, {"format": "nnunet", "cases": ids}),
    )
    second = _zip(
        client,
        _export(client, django_capture_on_commit_callbacks, {"format": "nnunet", "cases": ids}),
    )
    m1 = json.loads(first.read("manifest.json"))
    m2 = json.loads(second.read("manifest.json"))
    assert m1["files"] == m2["files"]
    for name in first.namelist():
        if name != "manifest.json":
            assert first.read(name) == second.read(name), name


def test_dicom_seg_export_reads_back(
    three_cases: list[Any],
    data_manager: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(data_manager)
    ids = [c.pk for c in three_cases[:2]]
    detail = _export(
        client, django_capture_on_commit_callbacks, {"format": "dicom-seg", "cases": ids}
    )
    archive = _zip(client, detail)
    names = archive.namelist()
    for case in three_cases[:2]:
        stem = f"case{case.pk:05d}"
        mask, series = _mask_of(case)
        sources = [
            pydicom.dcmread(io.BytesIO(archive.read(n)))
            for n in names
            if n.startswith(f"{stem}/{series.kind}/")
        ]
        assert len(sources) == series.shape[0]
        for ds in sources:
            assert (
                str(ds.PatientName).rstrip("^") == case.code and ds.PatientIdentityRemoved == "YES"
            )
            assert "InstitutionName" not in ds
        by_uid = {ds.SOPInstanceUID: ds for ds in sources}
        seg = hd.seg.segread(io.BytesIO(archive.read(f"{stem}/SEG/seg.dcm")))
        assert seg.SegmentationType == "BINARY"
        labels = {lab.value: lab.name for lab in case.etiology.label_set.labels.all()}
        present = [int(v) for v in np.unique(mask) if v]
        assert seg.number_of_segments == len(present)
        ordered = sorted(sources, key=lambda ds: int(ds.InstanceNumber))
        for number, value in enumerate(present, start=1):
            desc = seg.get_segment_description(number)
            assert labels[value] in desc.segment_label
            assert desc.segmented_property_type.value == "55641003"
            assert desc.segmented_property_category.value == "49755003"
            assert desc.algorithm_type == hd.seg.SegmentAlgorithmTypeValues.MANUAL
            pixels = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=[ds.SOPInstanceUID for ds in ordered],
                segment_numbers=[number],
                combine_segments=True,
            )
            assert np.array_equal(pixels > 0, mask == value)
        assert set(by_uid)  # referenced instances exist in the zip
        # Every object written passes the IOD validator without an error.
        assert dciodvfy_errors(archive.read(f"{stem}/SEG/seg.dcm")) == []
        assert (
            dciodvfy_errors(
                archive.read(next(n for n in names if n.startswith(f"{stem}/{series.kind}/")))
            )
            == []
        )
    # SEG bytes are deterministic: export again and compare.
    again = _zip(
        client,
        _export(client, django_capture_on_commit_callbacks, {"format": "dicom-seg", "cases": ids}),
    )
    for name in names:
        if name != "manifest.json":
            assert archive.read(name) == again.read(name), name


def test_export_permissions_and_errors(
    three_cases: list[Any],
    clinician: Any,
    neurologist: Any,
    data_manager: Any,
    api_client_for: Any,
) -> None:
    for user in (clinician, neurologist):
        client = api_client_for(user)
        assert client.post("/api/exports/", {"format": "nnunet"}, format="json").status_code == 403
    client = api_client_for(data_manager)
    assert client.post("/api/exports/", {"format": "zip"}, format="json").status_code == 400
    response = client.post("/api/exports/", {"format": "nnunet", "cases": [999999]}, format="json")
    assert response.status_code == 400 and "message" in response.json()
    assert ExportJob.objects.count() == 0


def test_failed_export_leaves_no_file(
    three_cases: list[Any],
    data_manager: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    client = api_client_for(data_manager)

    def export_files() -> set[str]:
        root = storage.local_path("exports")
        return {str(p) for p in root.rglob("*")} if root and root.exists() else set()

    before = export_files()
    # The mask file vanishes between the request and the task: the export must fail cleanly.
    ann = Annotation.objects.select_related("current_revision").get(series__case=three_cases[0])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            "/api/exports/", {"format": "nnunet", "cases": [three_cases[0].pk]}, format="json"
        )
    assert response.status_code == 202
    storage.delete(ann.current_revision.key)
    for callback in callbacks:
        callback()
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert job.status == "failed" and job.error
    assert export_files() == before and not job.result_key
    assert client.get(f"/api/exports/{job.pk}/download/").status_code == 409
