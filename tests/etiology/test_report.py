"""The prediction report: the PNG over REST and the page, in English and Russian; the page
in real Chromium (the picture loads)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from etiology.models import Workup
from inference.models import PredictionJob
from inference.report import key_slices
from inference.services.prediction import prediction_execute, prediction_request
from tests.browser import login


def _done_prediction(make_phantom_case: Any, registered_model: Any, user: Any) -> PredictionJob:
    registered_model()
    case = make_phantom_case("cardioembolic")
    Workup.objects.create(case=case, atrial_fibrillation=True, vessel_imaging=True)
    job, _ = prediction_request(user=user, case=case, enqueue=False)
    job = prediction_execute(job_id=job.pk)
    assert job.status == "done", job.error
    return job


def test_key_slices_are_the_largest_lesion_areas() -> None:
    import numpy as np

    labels = np.zeros((8, 10, 10), np.uint8)
    labels[2, :3, :3] = 1
    labels[5, :5, :5] = 2
    labels[6, :1, :2] = 1
    assert key_slices(labels) == [5, 2, 6]
    assert key_slices(labels, n=1) == [5]
    assert key_slices(np.zeros((3, 4, 4))) == []


def test_report_png_and_page(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    api_client_for: Any,
    client: Any,
) -> None:
    job = _done_prediction(make_phantom_case, registered_model, neurologist)
    api = api_client_for(neurologist)
    response = api.get(f"/api/predictions/{job.pk}/report.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    picture = Image.open(io.BytesIO(response.content))
    assert picture.size == (1400, 1000)
    assert len(set(picture.convert("L").getdata())) > 20  # a real picture, not a blank one
    client.force_login(neurologist)
    page = client.get(f"/models/predictions/{job.pk}/report/").content.decode()
    assert "Three answers" in page and "atrial fibrillation" in page and "report.png" in page
    assert "Atrial fibrillation: yes" in page
    russian = client.get(f"/models/predictions/{job.pk}/report/", HTTP_ACCEPT_LANGUAGE="ru")
    assert (
        "Три ответа" in russian.content.decode() or "Three answers" not in russian.content.decode()
    )


def test_report_of_an_unfinished_prediction_is_409(
    make_phantom_case: Any, registered_model: Any, neurologist: Any, api_client_for: Any
) -> None:
    registered_model()
    case = make_phantom_case("lacunar")
    job, _ = prediction_request(user=neurologist, case=case, enqueue=False)
    response = api_client_for(neurologist).get(f"/api/predictions/{job.pk}/report.png")
    assert response.status_code == 409 and "not done" in response.json()["message"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_report_page_in_chromium(
    page: Any, live_server: Any, make_phantom_case: Any, registered_model: Any, neurologist: Any
) -> None:
    job = _done_prediction(make_phantom_case, registered_model, neurologist)
    login(page, live_server.url, neurologist)
    page.goto(f"{live_server.url}/cases/{job.case_id}/")
    page.click(".prediction-report-link")
    page.wait_for_selector("#report-etiology")
    page.wait_for_function(
        "document.querySelector('#report-picture').complete && "
        "document.querySelector('#report-picture').naturalWidth === 1400"
    )
    assert "Etiology" in page.inner_text("#report-etiology")
    assert "atrial fibrillation" in page.inner_text("#report-rules")
