"""Case and label REST APIs: contract shapes, permissions, error shape, query counts."""

from __future__ import annotations

import pytest

from cases.models import AuditEvent, Case
from tests.factories import CaseFactory, label

pytestmark = pytest.mark.django_db

CASE_KEYS = {
    "id",
    "code",
    "etiology",
    "confirmed",
    "status",
    "note",
    "created_by",
    "created_at",
    "updated_at",
    "series_count",
}


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "extra"}
    assert body["message"]
    return body


def test_labels(api_client_for, clinician) -> None:
    response = api_client_for(clinician).get("/api/labels/", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    body = response.json()
    assert [item["value"] for item in body] == [1, 2, 3, 4, 5]
    assert body[0]["name"] == "atherothrombotic"
    assert body[0]["color"] == "#e53935"
    assert body[1]["title"] == "Кардиоэмболический"
    assert 0 not in [item["value"] for item in body]


def test_user_without_role_is_forbidden(api_client_for, make_user) -> None:
    client = api_client_for(make_user(username="norole"))
    for url in ("/api/labels/", "/api/cases/"):
        assert_error(client.get(url), 403)


def test_create_case(api_client_for, neurologist) -> None:
    client = api_client_for(neurologist)
    response = client.post(
        "/api/cases/",
        {"code": "SA-0042", "etiology": "cardioembolic", "confirmed": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == CASE_KEYS
    assert body["code"] == "SA-0042"
    assert body["etiology"] == "cardioembolic"
    assert body["confirmed"] is True
    assert body["status"] == "new"
    assert body["created_by"] == "neuro"
    assert body["series_count"] == 0
    assert AuditEvent.objects.filter(verb="case.created", target_id=str(body["id"])).exists()


def test_create_without_etiology(api_client_for, clinician) -> None:
    response = api_client_for(clinician).post(
        "/api/cases/", {"code": "CL-1", "etiology": None, "confirmed": False}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["etiology"] is None


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"code": "Ivanov Ivan"}, "code"),
        ({"code": "DOE^JANE"}, "code"),
        ({"code": "SA-1", "etiology": "unknown-label"}, "etiology"),
        ({"code": "SA-1", "confirmed": True}, "confirmed"),
        ({}, None),
    ],
)
def test_create_rejects(api_client_for, neurologist, payload, field) -> None:
    response = api_client_for(neurologist).post("/api/cases/", payload, format="json")
    body = assert_error(response, 400)
    if field:
        assert body["extra"]["field"] == field
    else:
        assert "code" in body["extra"]["fields"]
    assert not Case.objects.exists()


def test_create_duplicate_code(api_client_for, neurologist) -> None:
    CaseFactory(code="SA-0042", created_by=neurologist)
    response = api_client_for(neurologist).post("/api/cases/", {"code": "SA-0042"}, format="json")
    assert_error(response, 400)


def test_reviewer_may_not_create(api_client_for, reviewer) -> None:
    response = api_client_for(reviewer).post("/api/cases/", {"code": "SA-9"}, format="json")
    assert_error(response, 403)


def test_list_paginated_and_filtered(api_client_for, neurologist, django_assert_num_queries):
    for i in range(7):
        CaseFactory(
            code=f"SA-{i:04d}",
            created_by=neurologist,
            etiology=label("lacunar" if i % 2 else "cardioembolic"),
            confirmed=i < 3,
            status="approved" if i == 6 else "new",
        )
    client = api_client_for(neurologist)
    # token+user, roles, count, page (series_count annotated, etiology and user joined)
    with django_assert_num_queries(4):
        response = client.get("/api/cases/")
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 7
    assert set(body["results"][0]) == CASE_KEYS
    assert [c["code"] for c in body["results"]][:2] == ["SA-0006", "SA-0005"]

    def codes(query: str) -> list[str]:
        return sorted(c["code"] for c in client.get(f"/api/cases/?{query}").json()["results"])

    assert codes("etiology=lacunar") == ["SA-0001", "SA-0003", "SA-0005"]
    assert codes("confirmed=true") == ["SA-0000", "SA-0001", "SA-0002"]
    assert codes("confirmed=false&etiology=cardioembolic") == ["SA-0004", "SA-0006"]
    assert codes("status=approved") == ["SA-0006"]
    page2 = client.get("/api/cases/?page=2&page_size=5").json()
    assert page2["count"] == 7
    assert_error(client.get("/api/cases/?status=bogus"), 400)
    assert_error(client.get("/api/cases/?page=99"), 404)


def test_list_query_count_does_not_grow_with_series(
    api_client_for, neurologist, phantom_case, django_assert_num_queries
) -> None:
    for i in range(5):
        CaseFactory(code=f"SA-{i:04d}", created_by=neurologist, etiology=label("other"))
    client = api_client_for(neurologist)
    with django_assert_num_queries(4):
        body = client.get("/api/cases/").json()
    by_code = {c["code"]: c for c in body["results"]}
    assert by_code["PH-0007"]["series_count"] == 3
    assert by_code["SA-0000"]["series_count"] == 0


def test_clinician_lists_only_own(api_client_for, clinician, neurologist) -> None:
    CaseFactory(code="SA-0001", created_by=neurologist)
    own = CaseFactory(code="SA-0002", created_by=clinician)
    body = api_client_for(clinician).get("/api/cases/").json()
    assert [c["id"] for c in body["results"]] == [own.pk]


def test_get_case_and_404(api_client_for, clinician, neurologist) -> None:
    foreign = CaseFactory(code="SA-0001", created_by=neurologist)
    own = CaseFactory(code="SA-0002", created_by=clinician)
    client = api_client_for(clinician)
    assert client.get(f"/api/cases/{own.pk}/").json()["code"] == "SA-0002"
    # a case the caller may not see is indistinguishable from an unknown one
    assert_error(client.get(f"/api/cases/{foreign.pk}/"), 404)
    assert_error(client.get("/api/cases/999999/"), 404)


def test_patch_case(api_client_for, neurologist) -> None:
    case = CaseFactory(code="SA-0001", created_by=neurologist)
    client = api_client_for(neurologist)
    response = client.patch(
        f"/api/cases/{case.pk}/",
        {"etiology": "lacunar", "confirmed": True, "note": "ECG: sinus", "status": "new"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["etiology"], body["confirmed"], body["note"], body["status"]) == (
        "lacunar",
        True,
        "ECG: sinus",
        "new",
    )
    event = AuditEvent.objects.get(verb="case.updated")
    assert event.data["etiology"] == [None, "lacunar"]
    # unconfirming and clearing the etiology in one request is fine
    body = client.patch(
        f"/api/cases/{case.pk}/", {"etiology": None, "confirmed": False}, format="json"
    ).json()
    assert body["etiology"] is None
    body = assert_error(
        client.patch(f"/api/cases/{case.pk}/", {"code": "Petrov Petr"}, format="json"), 400
    )
    assert body["extra"]["field"] == "code"
    assert_error(client.patch(f"/api/cases/{case.pk}/", {"status": "nope"}, format="json"), 400)


@pytest.mark.parametrize(
    "role, own, status",
    [
        ("neurologist", False, 200),
        ("data_manager", False, 200),
        ("reviewer", False, 403),
        ("clinician", True, 200),
        ("clinician", False, 404),
    ],
)
def test_patch_permissions(api_client_for, request, neurologist, role, own, status) -> None:
    user = request.getfixturevalue(role)
    case = CaseFactory(code="SA-0001", created_by=user if own else neurologist)
    response = api_client_for(user).patch(f"/api/cases/{case.pk}/", {"note": "x"}, format="json")
    assert response.status_code == status


@pytest.mark.parametrize(
    "role, status",
    [("neurologist", 403), ("reviewer", 403), ("clinician", 403), ("data_manager", 204)],
)
def test_delete_permissions(api_client_for, request, role, status) -> None:
    user = request.getfixturevalue(role)
    case = CaseFactory(code="SA-0001", created_by=user)
    response = api_client_for(user).delete(f"/api/cases/{case.pk}/")
    assert response.status_code == status
    assert Case.objects.filter(pk=case.pk).exists() is (status != 204)
    if status == 403:
        assert set(response.json()) == {"message", "extra"}


def test_delete_removes_series_files(
    api_client_for, data_manager, phantom_case, django_capture_on_commit_callbacks
) -> None:
    from cases import storage

    keys = list(phantom_case.series.values_list("volume__key", flat=True))
    assert all(storage.exists(k) for k in keys)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client_for(data_manager).delete(f"/api/cases/{phantom_case.pk}/")
    assert response.status_code == 204
    assert not any(storage.exists(k) for k in keys)
    assert_error(api_client_for(data_manager).get(f"/api/cases/{phantom_case.pk}/"), 404)


def test_case_series_list(
    api_client_for, reviewer, phantom_case, django_assert_num_queries
) -> None:
    client = api_client_for(reviewer)
    # token+user, roles, case (visibility, annotated), series with volumes
    with django_assert_num_queries(4):
        response = client.get(f"/api/cases/{phantom_case.pk}/series/")
    assert response.status_code == 200
    body = response.json()
    assert sorted(s["kind"] for s in body) == ["ADC", "DWI", "FLAIR"]
    assert all(s["case"] == phantom_case.pk and s["shape"] == [8, 64, 64] for s in body)
    assert_error(client.get("/api/cases/999999/series/"), 404)


def test_schema_lists_routes(anon_client) -> None:
    schema = anon_client.get("/api/schema/?format=json").json()
    for route in (
        "/api/labels/",
        "/api/cases/",
        "/api/cases/{case_id}/",
        "/api/cases/{case_id}/series/",
        "/api/series/{series_id}/",
        "/api/series/{series_id}/volume.nii.gz",
        "/api/series/{series_id}/volume.raw",
        "/api/series/{series_id}/slices/{z}.png",
        "/api/series/{series_id}/slices/{z}.raw",
    ):
        assert route in schema["paths"], route
