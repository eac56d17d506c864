"""Auth: token login, default-deny, the one error shape, roles from the data migration."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

pytestmark = pytest.mark.django_db


def test_roles_exist_from_data_migration() -> None:
    names = set(Group.objects.values_list("name", flat=True))
    assert {"neurologist", "reviewer", "data_manager", "clinician"} <= names


def test_token_login(anon_client, neurologist) -> None:
    response = anon_client.post(
        "/api/auth/token/", {"username": "neuro", "password": "pass-Word-123"}, format="json"
    )
    assert response.status_code == 200
    token = response.json()["token"]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon_client.get("/api/labels/").status_code == 200


def test_token_login_wrong_password_has_error_shape(anon_client, neurologist) -> None:
    response = anon_client.post(
        "/api/auth/token/", {"username": "neuro", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"message", "extra"}
    assert body["message"]


def test_token_login_missing_fields(anon_client) -> None:
    response = anon_client.post("/api/auth/token/", {}, format="json")
    assert response.status_code == 400
    assert "username" in response.json()["extra"]["fields"]


@pytest.mark.parametrize("url", ["/api/labels/", "/api/cases/"])
def test_anonymous_is_refused(anon_client, url) -> None:
    response = anon_client.get(url)
    assert response.status_code in (401, 403)
    assert set(response.json()) == {"message", "extra"}


def test_public_routes(anon_client) -> None:
    assert anon_client.get("/api/schema/").status_code == 200
    assert anon_client.get("/healthz").json()["database"] == "ok"


def test_health_reports_ok(client) -> None:
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "database": "ok", "queue": "ok"}


def test_language_switch_is_remembered(client, neurologist) -> None:
    client.force_login(neurologist)
    response = client.post("/accounts/language/", {"language": "ru", "next": "/"})
    assert response.status_code == 302
    neurologist.profile.refresh_from_db()
    assert neurologist.profile.language == "ru"
    client.logout()
    client.cookies.clear()
    client.post("/accounts/login/", {"username": "neuro", "password": "pass-Word-123"})
    assert client.session.get("strokeaid_language") == "ru"
