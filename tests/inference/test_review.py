"""Review of model output: hand-computed per-case numbers, difference classes, the case and
model review pages on a registered model's real predictions, accept/flag, permissions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotation.models import Annotation, AnnotationRevision
from cases.models import Label, Series
from inference.review.comparison import (
    AGREE,
    ANNOTATOR_ONLY,
    LABEL_DIFFERS,
    MODEL_ONLY,
    NONE,
    case_numbers,
    difference_classes,
)
from inference.services.dataset import dataset_snapshot_create
from tests.inference.conftest import tiny_model_register

LABELS = {1: "atherothrombotic", 2: "cardioembolic"}


def test_difference_classes_hand_made() -> None:
    ann = np.array([[[0, 1, 1, 2, 0]]], dtype=np.uint8)
    pred = np.array([[[0, 1, 0, 1, 2]]], dtype=np.uint8)
    assert difference_classes(ann, pred).tolist() == [
        [[NONE, AGREE, ANNOTATOR_ONLY, LABEL_DIFFERS, MODEL_ONLY]]
    ]
    # Per label: label 1 only.
    assert difference_classes(ann, pred, label=1).tolist() == [
        [[NONE, AGREE, ANNOTATOR_ONLY, MODEL_ONLY, NONE]]
    ]
    with pytest.raises(ValueError):
        difference_classes(ann, pred[:, :, :3])


def test_case_numbers_empty_masks() -> None:
    empty = np.zeros((3, 4, 4), dtype=np.uint8)
    out = case_numbers(annotation=empty, prediction=empty, spacing=(2, 1, 1), labels=LABELS)
    # Absent from both: perfect agreement, never NaN.
    assert out["labels"]["atherothrombotic"]["dice"] == 1.0
    assert out["labels"]["cardioembolic"]["iou"] == 1.0
    assert out["detection"]["f1"] == 1.0 and out["detection"]["missed"] == 0
    assert out["total_ml"] == {"annotation": 0.0, "prediction": 0.0}


def test_case_numbers_one_voxel_lesions() -> None:
    ann = np.zeros((3, 4, 4), dtype=np.uint8)
    pred = np.zeros_like(ann)
    ann[0, 0, 0] = 1  # one-voxel lesion, found by the model
    pred[0, 0, 0] = 1
    ann[2, 3, 3] = 2  # one-voxel lesion, missed
    pred[1, 0, 3] = 1  # a false positive far away
    out = case_numbers(annotation=ann, prediction=pred, spacing=(5.0, 1.0, 2.0), labels=LABELS)
    athero = out["labels"]["atherothrombotic"]
    # label 1: tp=1, fp=1, fn=0 -> Dice 2/3, IoU 1/2.
    assert athero["dice"] == pytest.approx(2 / 3, abs=1e-4)
    assert athero["iou"] == pytest.approx(0.5)
    # Voxel = 5 * 1 * 2 mm^3 = 0.01 ml.
    assert athero["annotation_ml"] == pytest.approx(0.01)
    assert athero["prediction_ml"] == pytest.approx(0.02)
    cardio = out["labels"]["cardioembolic"]
    assert cardio["dice"] == 0.0 and cardio["prediction_ml"] == 0.0
    det = out["detection"]
    assert (det["annotation_lesions"], det["predicted_lesions"]) == (2, 2)
    assert (det["true_positives"], det["false_positives"], det["missed"]) == (1, 1, 1)
    assert det["f1"] == pytest.approx(0.5)
    # Any-lesion Dice: tp=1, fp=1, fn=1 -> 0.5.
    assert out["lesion_dice"] == pytest.approx(0.5)


@pytest.fixture
def predicted_case(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> Any:
    registered_model()
    case = make_phantom_case("cardioembolic", seed=5)
    client = api_client_for(neurologist)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/cases/{case.pk}/predictions/")
    assert response.status_code == 202
    body = client.get(f"/api/predictions/{response.json()['id']}/").json()
    assert body["status"] == "done", body
    case.prediction_id = body["id"]
    return case


def test_case_review_page_api_and_actions(
    predicted_case: Any,
    neurologist: Any,
    reviewer: Any,
    clinician: Any,
    client: Any,
    api_client_for: Any,
) -> None:
    dwi = Series.objects.get(case=predicted_case, kind="DWI")
    api = api_client_for(reviewer)
    numbers = api.get(f"/api/series/{dwi.pk}/review/").json()
    assert numbers["prediction"] == predicted_case.prediction_id
    assert numbers["etiology"]["confirmed"] == "cardioembolic"
    assert set(numbers["metrics"]["labels"]) == set(
        Label.objects.filter(label_set__is_active=True).values_list("name", flat=True)
    )
    for m in numbers["metrics"]["labels"].values():
        assert 0.0 <= m["dice"] <= 1.0 and 0.0 <= m["iou"] <= m["dice"] + 1e-9

    client.force_login(reviewer)
    page = client.get(f"/models/review/series/{dwi.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="review-metrics"' in html and "model only" in html
    for layer in ("image", "annotation", "prediction", "difference"):
        png = client.get(f"/models/review/series/{dwi.pk}/slices/2.png?layer={layer}&label=2")
        assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/models/review/series/{dwi.pk}/slices/999.png").status_code == 404

    # Flag (any review role) and accept (neurologists: their own draft).
    flag = api.post(
        f"/api/series/{dwi.pk}/review/flag/", {"comment": "misses the insula"}, format="json"
    )
    assert flag.status_code == 201
    assert "misses the insula" in client.get(f"/models/review/series/{dwi.pk}/").content.decode()
    assert api.post(f"/api/series/{dwi.pk}/review/accept/", {}, format="json").status_code == 403
    accept = api_client_for(neurologist).post(
        f"/api/series/{dwi.pk}/review/accept/", {}, format="json"
    )
    assert accept.status_code == 201
    annotation = Annotation.objects.get(pk=accept.json()["annotation"])
    assert annotation.annotator_id == neurologist.pk and annotation.state == "draft"
    assert annotation.current_revision.source == AnnotationRevision.Source.PREDICTION

    client.force_login(clinician)
    assert client.get(f"/models/review/series/{dwi.pk}/").status_code == 403
    assert api_client_for(clinician).get(f"/api/series/{dwi.pk}/review/").status_code == 403


def test_model_review_page(
    make_phantom_case: Any,
    data_manager: Any,
    reviewer: Any,
    client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    for seed, etiology in enumerate(["cardioembolic", "lacunar"] * 4, start=10):
        make_phantom_case(etiology, seed=seed)
    snapshot = dataset_snapshot_create(user=data_manager, fractions=(0.5, 0.25, 0.25))
    model = tiny_model_register("phantom-run", dataset=snapshot, user=data_manager, activate=False)
    client.force_login(reviewer)
    page = client.get(f"/models/{model.pk}/review/")
    assert page.status_code == 200 and b'id="evaluate"' in page.content
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/models/{model.pk}/review/").status_code == 302
    page = client.get(f"/models/{model.pk}/review/?order=etiology")
    html = page.content.decode()
    assert 'id="model-review-cases"' in html and 'id="confusion-table"' in html
    n_test = snapshot.items.filter(split="test").count()
    assert html.count("/models/review/series/") >= n_test
    for name in ("confusion", "dice", "calibration"):
        svg = client.get(f"/models/{model.pk}/review/{name}.svg")
        assert svg.status_code == 200 and b"<svg" in svg.content
    # Etiologies and the split read in the reader's language (Russian here).
    client.cookies["django_language"] = "ru"
    html = client.get(f"/models/{model.pk}/review/").content.decode()
    assert "Выборка: Тест" in html or "Выборка: Валидация" in html, html[:3000]
    table = html[html.index('id="confusion-table"') :]
    assert "Кардиоэмболический" in table and ">cardioembolic<" not in table
