"""The work-up over REST and on the case page; checks over REST."""

from __future__ import annotations

from typing import Any

import pytest

from cases.models import AuditEvent
from etiology.models import Workup

FULL = {
    "atrial_fibrillation": True,
    "cardiac_source": None,
    "stenosis_50": False,
    "vessel_imaging": True,
    "cardiac_workup": True,
    "lacunar_syndrome": None,
    "other_cause": None,
    "age": 74,
    "sex": "F",
    "nihss": 9,
}


@pytest.fixture
def case(make_phantom_case: Any) -> Any:
    return make_phantom_case("cardioembolic")


def test_workup_round_trip_and_audit(case: Any, neurologist: Any, api_client_for: Any) -> None:
    client = api_client_for(neurologist)
    url = f"/api/cases/{case.pk}/workup/"
    empty = client.get(url)
    assert empty.status_code == 200 and set(empty.json()) == set(FULL)
    assert all(v is None for v in empty.json().values())
    saved = client.put(url, FULL, format="json")
    assert saved.status_code == 200, saved.json()
    assert client.get(url).json() == FULL
    event = AuditEvent.objects.filter(verb="workup.updated", case=case).get()
    assert event.actor == neurologist and event.data["age"] == [None, 74]
    # PUT replaces: a missing key becomes unknown.
    client.put(url, {"atrial_fibrillation": True}, format="json")
    assert client.get(url).json()["age"] is None
    assert AuditEvent.objects.filter(verb="workup.updated", case=case).count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"atrial_fibrillation": "yes"},
        {"atrial_fibrillation": 1},
        {"age": -1},
        {"age": 121},
        {"age": "70"},
        {"nihss": 43},
        {"sex": "female"},
        {"other_cause": ["dissection"]},
        {"stenosis": True},
        [True],
        "text",
    ],
)
def test_bad_workups_are_refused_and_nothing_is_stored(
    body: Any, case: Any, neurologist: Any, api_client_for: Any
) -> None:
    client = api_client_for(neurologist)
    url = f"/api/cases/{case.pk}/workup/"
    assert client.put(url, {**FULL, "age": 60}, format="json").status_code == 200
    response = client.put(url, body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["message"].startswith("Invalid work-up") or response.json()["message"]
    assert client.get(url).json()["age"] == 60
    assert Workup.objects.get(case=case).stenosis_50 is False


def test_workup_permissions(
    case: Any, clinician: Any, reviewer: Any, data_manager: Any, api_client_for: Any
) -> None:
    url = f"/api/cases/{case.pk}/workup/"
    assert api_client_for(clinician).get(url).status_code == 404  # not the clinician's case
    assert api_client_for(reviewer).get(url).status_code == 200
    assert api_client_for(reviewer).put(url, FULL, format="json").status_code == 403
    assert api_client_for(data_manager).put(url, FULL, format="json").status_code == 200
    own = api_client_for(clinician).post("/api/cases/", {"code": "CL-1"}, format="json").json()
    assert (
        api_client_for(clinician)
        .put(f"/api/cases/{own['id']}/workup/", FULL, format="json")
        .status_code
        == 200
    )


def test_checks_follow_the_workup(
    case: Any, neurologist: Any, data_manager: Any, api_client_for: Any
) -> None:
    client = api_client_for(neurologist)
    checks_url = f"/api/cases/{case.pk}/checks/"
    codes = {c["code"] for c in client.get(checks_url).json()}
    assert "cardio_no_source" in codes  # cardioembolic, no source documented
    client.put(f"/api/cases/{case.pk}/workup/", FULL, format="json")
    codes = {c["code"] for c in client.get(checks_url).json()}
    assert "cardio_no_source" not in codes
    client.put(
        f"/api/cases/{case.pk}/workup/",
        {**FULL, "atrial_fibrillation": False, "cardiac_source": False},
        format="json",
    )
    body = client.get(checks_url).json()
    assert {"code": "cardio_no_source", "severity": "error"} in [
        {k: c[k] for k in ("code", "severity")} for c in body
    ]
    listed = api_client_for(data_manager).get("/api/checks/").json()
    assert [row["case"] for row in listed] == [case.pk]


def test_case_page_edits_the_workup(case: Any, neurologist: Any, client: Any) -> None:
    client.force_login(neurologist)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert 'id="workup-form"' in page and "cardio_no_source" in page
    response = client.post(
        f"/etiology/cases/{case.pk}/workup/",
        {
            "atrial_fibrillation": "yes",
            "vessel_imaging": "yes",
            "cardiac_workup": "yes",
            "age": "68",
            "sex": "M",
        },
    )
    assert response.status_code == 302
    stored = Workup.objects.get(case=case)
    assert stored.atrial_fibrillation is True and stored.age == 68 and stored.stenosis_50 is None
    bad = client.post(f"/etiology/cases/{case.pk}/workup/", {"age": "old"}, follow=True)
    assert "Invalid work-up" in bad.content.decode()
    assert Workup.objects.get(case=case).age == 68
    listed = client.get("/etiology/checks/")
    assert listed.status_code == 200 and case.code not in listed.content.decode()  # AF: no check
