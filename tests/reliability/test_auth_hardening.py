"""Login and token hardening: tokens expire, rotate with the password, can be revoked; the
login throttle keys on the real client address and survives a dead cache."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.auth_cache import auth_caches_clear

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]

PASSWORD = "a-long-test-password"


@pytest.fixture
def login_user(make_user: Any) -> Any:
    user = make_user("clinician", username="ward")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture(autouse=True)
def _fresh_throttle_and_caches() -> Any:
    cache.clear()
    auth_caches_clear()
    yield
    cache.clear()
    auth_caches_clear()


def _login(client: APIClient, password: str = PASSWORD, **headers: Any) -> Any:
    return client.post(
        "/api/auth/token/", {"username": "ward", "password": password}, format="json", **headers
    )


def _cases(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/cases/").status_code


def test_password_change_revokes_the_token(login_user: Any) -> None:
    first = _login(APIClient()).json()
    assert first["expires_at"] and _cases(first["token"]) == 200
    assert _login(APIClient()).json()["token"] == first["token"]  # same token while valid
    login_user.set_password("another-long-password")
    login_user.save()
    auth_caches_clear()
    assert _cases(first["token"]) == 401
    second = _login(APIClient(), password="another-long-password").json()
    assert second["token"] != first["token"] and _cases(second["token"]) == 200


def test_deactivation_revokes_tokens(login_user: Any) -> None:
    token = _login(APIClient()).json()["token"]
    login_user.is_active = False
    login_user.save()
    assert not Token.objects.filter(key=token).exists()


def test_expired_token_is_refused_and_replaced(login_user: Any, settings: Any) -> None:
    settings.STROKEAID = {**settings.STROKEAID, "TOKEN_TTL_HOURS": 1}
    token = _login(APIClient()).json()["token"]
    Token.objects.filter(key=token).update(created=timezone.now() - timedelta(hours=2))
    assert _cases(token) == 401
    # A stale token in the header does not stop a login; the new token is another one.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    fresh = _login(client).json()["token"]
    assert fresh != token and _cases(fresh) == 200


def test_user_revokes_own_tokens(login_user: Any) -> None:
    token = _login(APIClient()).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.delete("/api/auth/token/").status_code == 204
    auth_caches_clear()
    assert _cases(token) == 401
    assert APIClient().delete("/api/auth/token/").status_code == 401


def test_forwarded_for_header_does_not_bypass_the_throttle(login_user: Any) -> None:
    client = APIClient()
    # A new username each time: the per-address throttle, not the per-user lockout, answers.
    codes = [
        client.post(
            "/api/auth/token/",
            {"username": f"guess{i}", "password": "wrong"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        ).status_code
        for i in range(25)
    ]
    assert codes.count(429) >= 5, codes
    assert codes[:20] == [400] * 20


def test_throttle_lets_logins_through_when_the_cache_is_down(
    login_user: Any, settings: Any
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    # pytest-django's settings fixture resets Django's cache handlers on the change.
    response = _login(APIClient())
    assert response.status_code == 200, response.content


def test_login_pages_and_token_route_lock_a_username_after_failures(
    login_user: Any, make_user: Any, settings: Any, client: Any
) -> None:
    from axes.models import AccessAttempt

    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = client.post("/accounts/login/", {"username": "ward", "password": "nope"})
        assert response.status_code == 200  # the form again, with its error
    # The limit-th failure locks; then even the right password is refused.
    assert client.post("/accounts/login/", {"username": "ward", "password": "x"}).status_code == 429
    locked = client.post("/accounts/login/", {"username": "ward", "password": PASSWORD})
    assert locked.status_code == 429 and b"lockout-message" in locked.content
    # The same username and address is locked on the token route and the admin login too.
    api = _login(APIClient())
    assert api.status_code == 429 and set(api.json()) == {"message", "extra"}
    admin = client.post("/admin/login/", {"username": "ward", "password": PASSWORD})
    assert admin.status_code == 429
    # Audited: the attempts are recorded with the address and username.
    attempt = AccessAttempt.objects.get(username="ward")
    assert attempt.failures_since_start >= limit and attempt.ip_address == "127.0.0.1"
    # Another user at the same address is not locked out.
    other = make_user("clinician", username="colleague")
    other.set_password(PASSWORD)
    other.save()
    ok = APIClient().post(
        "/api/auth/token/", {"username": "colleague", "password": PASSWORD}, format="json"
    )
    assert ok.status_code == 200
