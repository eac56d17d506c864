"""Every error in the ``{"message", "extra"}`` shape: unknown API routes with DEBUG on or off,
multipart without a boundary, oversized JSON, a database that cannot be reached."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

pytestmark = [pytest.mark.reliability]


def _shape(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"message", "extra"}, body
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_routes_are_json_404(
    api_client_for: Any, neurologist: Any, settings: Any, debug: bool, method: str
) -> None:
    settings.DEBUG = debug
    response = getattr(api_client_for(neurologist), method)("/api/no/such/route/")
    assert response.status_code == 404
    assert _shape(response)["extra"]["path"] == "/api/no/such/route/"
    # Anonymous callers too (the route does not exist for anyone).
    assert Client().get("/api/nothing-here").status_code == 404


@pytest.mark.django_db
def test_multipart_without_boundary_is_a_json_400(
    api_client_for: Any, neurologist: Any, phantom_case: Any
) -> None:
    response = api_client_for(neurologist).generic(
        "POST",
        f"/api/cases/{phantom_case.pk}/uploads/",
        b"--x\r\nContent-Disposition: form-data; name=files\r\n\r\nabc\r\n--x--\r\n",
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    _shape(response)


@pytest.mark.django_db
def test_oversized_json_is_a_json_413(api_client_for: Any, neurologist: Any, settings: Any) -> None:
    body = '{"code": "' + "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10) + '"}'
    response = api_client_for(neurologist).generic(
        "POST", "/api/cases/", body, content_type="application/json"
    )
    assert response.status_code == 413
    _shape(response)


@pytest.mark.django_db(transaction=True)
def test_database_down_is_a_json_503(neurologist: Any, settings: Any) -> None:
    from rest_framework.authtoken.models import Token

    from core.auth_cache import auth_caches_clear

    token = Token.objects.create(user=neurologist).key
    auth_caches_clear()
    saved = dict(connection.settings_dict)
    connection.close()
    if hasattr(connection, "close_pool"):  # PostgreSQL's pool keeps the old address
        connection.close_pool()
    # Point the connection at a database that cannot be reached (no server on port 1; a
    # folder that does not exist for SQLite), as when the server restarts.
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/strokeaid/db.sqlite3"
    else:
        connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})
    try:
        client = Client(HTTP_AUTHORIZATION=f"Token {token}", raise_request_exception=False)
        response = client.get("/api/cases/")
    finally:
        connection.close()
        if hasattr(connection, "close_pool"):
            connection.close_pool()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = _shape(response)
    assert "127.0.0.1" not in body["message"] and "nonexistent" not in str(body)


@pytest.mark.django_db
def test_free_text_has_length_limits(
    api_client_for: Any, neurologist: Any, reviewer: Any, phantom_case: Any, client: Any
) -> None:
    from cases.services.case import NOTE_MAX_LENGTH

    api = api_client_for(neurologist)
    too_long = "n" * (NOTE_MAX_LENGTH + 1)
    response = api.patch(f"/api/cases/{phantom_case.pk}/", {"note": too_long}, format="json")
    assert response.status_code == 400
    assert _shape(response)["extra"]
    created = api.post("/api/cases/", {"code": "LONG-0001", "note": too_long}, format="json")
    assert created.status_code == 400
    ok = api.patch(f"/api/cases/{phantom_case.pk}/", {"note": "n" * NOTE_MAX_LENGTH}, format="json")
    assert ok.status_code == 200
    # The service refuses it whatever the caller (the page form and the editor go through it).
    from cases.services.case import case_update
    from strokeaid_site.errors import ApplicationError

    with pytest.raises(ApplicationError):
        case_update(user=neurologist, case=phantom_case, data={"note": too_long})
