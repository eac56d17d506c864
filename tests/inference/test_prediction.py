"""Predictions end to end through the API and the task queue (django-q2 sync mode)."""

from __future__ import annotations

import gzip
from typing import Any

import nibabel as nib
import numpy as np
import pytest

from cases import storage
from cases.models import Series
from inference.models import JobStatus, PredictionJob, PredictionSeries


def _prediction_files() -> set[str]:
    root = storage.local_path("predictions")
    if root is None or not root.exists():
        return set()
    return {str(p) for p in root.rglob("*") if p.is_file()}


def _predict(client: Any, case_id: int, capture: Any) -> dict[str, Any]:
    with capture(execute=True):
        response = client.post(f"/api/cases/{case_id}/predictions/")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued"
    return client.get(f"/api/predictions/{body['id']}/").json()


def test_prediction_end_to_end(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    registered_model()
    case = make_phantom_case("cardioembolic")
    client = api_client_for(neurologist)
    body = _predict(client, case.pk, django_capture_on_commit_callbacks)
    assert body["status"] == "done", body["error"]
    assert body["error"] is None
    assert set(body["probabilities"]) == {
        "atherothrombotic",
        "cardioembolic",
        "cryptogenic",
        "lacunar",
        "other",
    }
    assert set(body["volumes_ml"]) == set(body["probabilities"])
    assert "count" in body["lesions"]
    if body["lesions"]["count"]:
        assert abs(sum(body["probabilities"].values()) - 1.0) < 1e-6
        assert body["etiology"] in body["probabilities"] and 0 < body["confidence"] <= 1

    # Etiology reasoning beside the vote (the REST contract's shape).
    methods = body["methods"]
    assert methods["segmentation_vote"]["etiology"] == body["etiology"]
    assert "combined" not in methods  # no case-level model is active
    assert body["pattern"]["count"] == body["lesions"]["count"]
    assert set(body["workup_used"]) >= {"atrial_fibrillation", "stenosis_50", "nihss"}
    if not body["pattern"]["deep_small"]:  # (an untrained network: any pattern may come)
        assert methods["toast_rules"]["etiology"] == "cryptogenic"  # nothing known
    assert methods["toast_rules"]["reason"] and methods["toast_rules"]["gaps"]
    assert {c["code"] for c in body["checks"]} >= {"cardio_no_source"}
    client.put(
        f"/api/cases/{case.pk}/workup/",
        {"atrial_fibrillation": True, "vessel_imaging": True, "cardiac_workup": True},
        format="json",
    )
    second = _predict(client, case.pk, django_capture_on_commit_callbacks)
    rules = second["methods"]["toast_rules"]
    assert rules["etiology"] == "cardioembolic" and "atrial fibrillation" in rules["reason"]
    assert second["workup_used"]["atrial_fibrillation"] is True and not rules["gaps"]
    assert second["checks"] == []

    dwi = Series.objects.get(case=case, kind="DWI")
    response = client.get(f"/api/predictions/{body['id']}/mask.nii.gz")
    assert response.status_code == 200
    image = nib.Nifti1Image.from_bytes(gzip.decompress(response.content))
    assert image.shape == tuple(reversed(dwi.shape))  # NIfTI (x, y, z) of the (z, y, x) grid
    assert np.allclose(image.affine, np.asarray(dwi.affine))

    # Every series on the reference grid gets the overlay, in the editor's raw format.
    raw = client.get(f"/api/series/{dwi.pk}/prediction.raw")
    assert raw.status_code == 200
    assert raw["X-Shape"] == ",".join(str(n) for n in dwi.shape)
    volume = np.frombuffer(raw.content, dtype=np.uint8).reshape(dwi.shape)
    assert np.array_equal(volume, np.asarray(image.dataobj).transpose(2, 1, 0))
    flair = Series.objects.get(case=case, kind="FLAIR")
    assert client.get(f"/api/series/{flair.pk}/prediction.raw").status_code == 200


def test_editor_offers_the_prediction_overlay_once_done(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    registered_model()
    case = make_phantom_case("lacunar")
    dwi = Series.objects.get(case=case, kind="DWI")
    client.force_login(neurologist)
    editor = f"/annotation/cases/{case.pk}/"
    assert b"data-prediction-url" not in client.get(editor).content
    body = _predict(api_client_for(neurologist), case.pk, django_capture_on_commit_callbacks)
    assert body["status"] == "done"
    page = client.get(editor).content.decode()
    assert f'data-prediction-url="/api/series/{dwi.pk}/prediction.raw"' in page


def test_prediction_raw_is_404_without_prediction(
    make_phantom_case: Any, neurologist: Any, api_client_for: Any
) -> None:
    case = make_phantom_case("lacunar")
    dwi = Series.objects.get(case=case, kind="DWI")
    response = api_client_for(neurologist).get(f"/api/series/{dwi.pk}/prediction.raw")
    assert response.status_code == 404
    assert set(response.json()) == {"message", "extra"}


def test_no_active_model_is_409(
    make_phantom_case: Any, registered_model: Any, neurologist: Any, api_client_for: Any
) -> None:
    registered_model(activate=False)
    case = make_phantom_case("lacunar")
    response = api_client_for(neurologist).post(f"/api/cases/{case.pk}/predictions/")
    assert response.status_code == 409
    body = response.json()
    assert body["message"].startswith("No model is active. A data manager must train or activate")
    assert body["extra"]["training_runs"] == "/api/training-runs/"
    assert not PredictionJob.objects.exists()


def test_duplicate_request_returns_the_queued_job(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    reviewer: Any,
    api_client_for: Any,
) -> None:
    registered_model()
    case = make_phantom_case("cardioembolic")
    # Outside on-commit execution the job stays queued, as behind a busy worker.
    first = api_client_for(neurologist).post(f"/api/cases/{case.pk}/predictions/").json()
    second = api_client_for(reviewer).post(f"/api/cases/{case.pk}/predictions/").json()
    assert first["id"] == second["id"]
    assert PredictionJob.objects.count() == 1


def test_case_without_dwi_or_flair_is_a_clear_error(
    make_phantom_case: Any, registered_model: Any, neurologist: Any, api_client_for: Any
) -> None:
    registered_model()
    case = make_phantom_case("cardioembolic", kinds=("ADC",), mask=False)
    response = api_client_for(neurologist).post(f"/api/cases/{case.pk}/predictions/")
    assert response.status_code == 400
    assert "no DWI or FLAIR series" in response.json()["message"]
    assert response.json()["extra"]["series_kinds"] == ["ADC"]
    assert not PredictionJob.objects.exists()


def test_corrupt_weights_fail_cleanly(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    model = registered_model()
    data = bytearray(storage.read_bytes(model.weights_key))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
    storage.write_bytes(model.weights_key, bytes(data))
    case = make_phantom_case("cardioembolic")
    before = _prediction_files()
    body = _predict(api_client_for(neurologist), case.pk, django_capture_on_commit_callbacks)
    assert body["status"] == "failed"
    assert "corrupt" in body["error"]
    assert body["etiology"] is None and body["probabilities"] == {}
    assert not PredictionSeries.objects.exists()
    assert _prediction_files() == before


def test_unreadable_weights_with_matching_checksum_fail_cleanly(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    import hashlib

    from inference.models import ModelVersion

    model = registered_model()
    storage.write_bytes(model.weights_key, b"not a checkpoint")
    ModelVersion.objects.filter(pk=model.pk).update(
        weights_sha256=hashlib.sha256(b"not a checkpoint").hexdigest()
    )
    case = make_phantom_case("cardioembolic")
    body = _predict(api_client_for(neurologist), case.pk, django_capture_on_commit_callbacks)
    assert body["status"] == "failed"
    assert "cannot be loaded" in body["error"]
    assert not PredictionSeries.objects.exists()


def test_clinician_predicts_own_cases_only(
    make_phantom_case: Any,
    registered_model: Any,
    clinician: Any,
    make_user: Any,
    api_client_for: Any,
) -> None:
    registered_model()
    own = make_phantom_case("lacunar", created_by=clinician)
    other = make_phantom_case("lacunar", created_by=make_user("clinician", username="other"))
    client = api_client_for(clinician)
    assert client.post(f"/api/cases/{own.pk}/predictions/").status_code == 202
    assert client.post(f"/api/cases/{other.pk}/predictions/").status_code == 404


def test_case_prediction_list_query_count(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    django_assert_max_num_queries: Any,
) -> None:
    model = registered_model()
    case = make_phantom_case("lacunar")
    for _ in range(4):
        PredictionJob.objects.create(
            case=case, model=model, created_by=neurologist, status=JobStatus.FAILED
        )
    client = api_client_for(neurologist)
    client.get(f"/api/cases/{case.pk}/predictions/")
    with django_assert_max_num_queries(5):
        assert len(client.get(f"/api/cases/{case.pk}/predictions/").json()) == 4


@pytest.mark.slow
def test_predict_command_and_case_page(
    make_phantom_case: Any, registered_model: Any, neurologist: Any, client: Any
) -> None:
    from django.core.management import call_command

    registered_model()
    case = make_phantom_case("cardioembolic")
    call_command("predict", "--case", str(case.pk))
    job = PredictionJob.objects.get(case=case)
    assert job.status == JobStatus.DONE, job.error
    client.force_login(neurologist)
    page = client.get(f"/models/cases/{case.pk}/predictions/")
    assert page.status_code == 200
    assert b"predict-button" in page.content


def test_deleting_a_case_deletes_its_prediction_files(
    make_phantom_case: Any,
    registered_model: Any,
    data_manager: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    case = make_phantom_case("lacunar", seed=31)
    keep = make_phantom_case("lacunar", seed=32)
    registered_model()
    client = api_client_for(data_manager)
    deleted = _predict(client, case.pk, django_capture_on_commit_callbacks)
    kept = _predict(client, keep.pk, django_capture_on_commit_callbacks)
    assert deleted["status"] == kept["status"] == "done"

    def files_of(prediction_id: int) -> set[str]:
        return {p for p in _prediction_files() if f"/predictions/{prediction_id}/" in p}

    assert files_of(deleted["id"]) and files_of(kept["id"])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete(f"/api/cases/{case.pk}/").status_code == 204
    # Nothing of the deleted case's prediction is left on disk; the other case's stays.
    assert not files_of(deleted["id"])
    assert files_of(kept["id"])
