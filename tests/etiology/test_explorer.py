"""The cryptogenic explorer: REST listing, distribution, running the model, the page in
Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from inference.models import PredictionJob
from inference.services.prediction import prediction_execute
from tests.browser import login


def _run_all(client: Any, capture: Any) -> int:
    with capture(execute=True):
        response = client.post("/api/explorer/cryptogenic/")
    assert response.status_code == 202
    return int(response.json()["queued"])


def test_explorer_lists_suggestions_for_cryptogenic_cases(
    make_phantom_case: Any,
    registered_model: Any,
    neurologist: Any,
    clinician: Any,
    api_client_for: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    crypto = [make_phantom_case("cryptogenic", seed=70 + i) for i in range(3)]
    make_phantom_case("lacunar", seed=80)  # not cryptogenic: not listed
    client = api_client_for(neurologist)
    assert api_client_for(clinician).get("/api/explorer/cryptogenic/").status_code == 403
    empty = client.get("/api/explorer/cryptogenic/").json()
    assert empty["model"] is None and empty["cases"] == 3 and empty["predicted"] == 0
    registered_model()
    assert _run_all(client, django_capture_on_commit_callbacks) == 3
    assert _run_all(client, django_capture_on_commit_callbacks) == 0  # nothing left to run
    body = client.get("/api/explorer/cryptogenic/").json()
    assert {r["case"] for r in body["rows"]} == {c.pk for c in crypto}
    assert all(r["status"] == "done" for r in body["rows"])
    suggested = [r for r in body["rows"] if r["suggested"]]
    for row in suggested:
        assert row["suggested"] != "cryptogenic"
        assert abs(sum(row["shares"].values()) - 1.0) < 1e-3
        assert row["confidence"] == pytest.approx(max(row["shares"].values()), abs=1e-3)
    confidences = [r["confidence"] for r in body["rows"]]
    assert confidences == sorted(confidences, reverse=True)
    assert sum(body["distribution"].values()) == body["predicted"] == len(suggested)
    by_code = client.get("/api/explorer/cryptogenic/?order=code").json()["rows"]
    assert [r["code"] for r in by_code] == sorted(r["code"] for r in by_code)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_explorer_page_in_chromium(
    page: Any, live_server: Any, make_phantom_case: Any, registered_model: Any, neurologist: Any
) -> None:
    from inference.services.prediction import prediction_request

    registered_model()
    case = make_phantom_case("cryptogenic", seed=90)
    job, _ = prediction_request(user=neurologist, case=case, enqueue=False)
    prediction_execute(job_id=job.pk)
    assert PredictionJob.objects.get(pk=job.pk).status == "done"
    login(page, live_server.url, neurologist)
    page.click(".mainnav >> text=Explorer")
    page.wait_for_selector("#explorer-table")
    row = page.locator(f"#explorer-table tr[data-case='{case.pk}']")
    assert case.code in row.inner_text()
    assert row.locator("td").nth(3).inner_text().strip() == "done"
