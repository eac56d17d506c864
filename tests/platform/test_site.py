"""The site as a whole: production settings, job progress over websockets, the API contract."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from cases.models import UploadJob
from strokeaid_site.events import job_event_send
from strokeaid_site.routing import websocket_urlpatterns

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` in a child process with exactly ``env`` (settings load afresh)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy() -> None:
    # The test process allows async-unsafe DB access for the live server; production must not.
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "strokeaid_site.settings.production",
        "SECRET_KEY": "x" * 20 + "-production-secret-for-the-deploy-check-" + "y" * 20,
        "ALLOWED_HOSTS": "strokeaid.example.org",
        "DATABASE_URL": "sqlite:////tmp/strokeaid-deploy-check.sqlite3",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _run(coroutine_function: Any, *args: Any) -> Any:
    """Runs an async scenario in a worker thread with its own event loop: the test thread may
    already own a loop (Playwright's sync API leaves one behind after the browser tests)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(async_to_sync(coroutine_function), *args).result(timeout=60)


def _websocket(path: str, user: Any) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    communicator.scope["user"] = user
    return communicator


@pytest.mark.django_db(transaction=True)
def test_job_progress_reaches_the_watching_browser(make_user: Any) -> None:
    from tests.factories import CaseFactory

    owner = make_user("neurologist", username="owner")
    case = CaseFactory(created_by=owner)
    job = UploadJob.objects.create(case=case, created_by=owner)

    async def scenario() -> Any:
        communicator = _websocket(f"/ws/jobs/upload/{job.pk}/", owner)
        connected, _ = await communicator.connect()
        assert connected

        def _send() -> None:
            # Autocommit (transactional test): on_commit callbacks run at once, as in a worker.
            job_event_send("upload", job.pk, {"status": "running", "progress": 0.5})

        await sync_to_async(_send, thread_sensitive=False)()
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return message

    assert _run(scenario) == {"status": "running", "progress": 0.5}


@pytest.mark.django_db(transaction=True)
def test_job_progress_refuses_strangers_and_anonymous(make_user: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    from tests.factories import CaseFactory

    owner = make_user("clinician", username="owner")
    stranger = make_user("clinician", username="stranger")
    job = UploadJob.objects.create(case=CaseFactory(created_by=owner), created_by=owner)

    async def connect(user: Any, path: str) -> bool:
        communicator = _websocket(path, user)
        connected, _ = await communicator.connect()
        await communicator.disconnect()
        return connected

    path = f"/ws/jobs/upload/{job.pk}/"
    assert _run(connect, owner, path)
    assert not _run(connect, stranger, path)
    assert not _run(connect, AnonymousUser(), path)
    assert not _run(connect, owner, f"/ws/jobs/no-such-kind/{job.pk}/")


# The public REST contract (shared API.md): every route must be in the OpenAPI schema.
CONTRACT_ROUTES = {
    "/api/auth/token/": {"post"},
    "/api/labels/": {"get"},
    "/api/cases/": {"get", "post"},
    "/api/cases/{id}/": {"get", "patch", "delete"},
    "/api/cases/{id}/uploads/": {"post"},
    "/api/uploads/{job}/": {"get"},
    "/api/cases/{id}/series/": {"get"},
    "/api/series/{id}/": {"get"},
    "/api/series/{id}/volume.nii.gz": {"get"},
    "/api/series/{id}/mask.nii.gz": {"get", "put"},
    "/api/series/{id}/annotations/": {"get"},
    "/api/annotations/{id}/submit/": {"post"},
    "/api/annotations/{id}/approve/": {"post"},
    "/api/annotations/{id}/return/": {"post"},
    "/api/cases/{id}/predictions/": {"post"},
    "/api/predictions/{id}/": {"get"},
    "/api/predictions/{id}/mask.nii.gz": {"get"},
    "/api/training-runs/": {"post"},
    "/api/training-runs/{id}/": {"get"},
    "/api/models/": {"get"},
    "/api/models/{id}/activate/": {"post"},
    "/api/exports/": {"post"},
    "/api/exports/{id}/": {"get"},
}


def _normalise(path: str) -> str:
    """``/api/cases/{case_id}/`` -> ``/api/cases/{}/``: parameter names may differ."""
    import re

    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.mark.django_db
def test_every_contract_route_is_in_the_openapi_schema(anon_client: Any) -> None:
    response = anon_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = {_normalise(p): {m.lower() for m in ops} for p, ops in response.json()["paths"].items()}
    missing = {
        route: sorted(methods - paths.get(_normalise(route), set()))
        for route, methods in CONTRACT_ROUTES.items()
        if methods - paths.get(_normalise(route), set())
    }
    assert not missing, f"routes missing from /api/schema/: {missing}"


@pytest.mark.django_db
def test_api_docs_load_swagger_ui_from_our_static_files(
    anon_client: Any, client: Any, neurologist: Any
) -> None:
    from django.contrib.staticfiles import finders

    # A browser that is not signed in is sent to the login page, and back afterwards.
    anonymous = anon_client.get("/api/docs/")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/accounts/login/?next=/api/docs/"
    client.force_login(neurologist)
    page = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr.net" not in page and "https://" not in page.split("<body")[0]
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static/vendor/swagger-ui-dist/{name}" in page
        assert finders.find(f"vendor/swagger-ui-dist/{name}"), name


def test_settings_load_from_a_copied_env_example() -> None:
    """`cp .env.example .env` must give a working embedded site (empty values = defaults)."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    assert "DATABASE_URL" in values and "REDIS_URL" in values
    env = {**os.environ, **values, "STROKEAID_DATA_DIR": "/tmp/strokeaid-env-example-check"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    result = _manage("check", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_error_pages_are_in_the_site_layout_with_a_way_back(
    client: Any, make_user: Any, settings: Any
) -> None:
    from django.test import RequestFactory

    from strokeaid_site.errors import server_error_handler

    clinician = make_user("clinician", username="ward-doctor")
    client.force_login(clinician)
    forbidden = client.get("/models/exports/")
    assert forbidden.status_code == 403
    page = forbidden.content.decode()
    assert 'id="error-403"' in page and 'class="mainnav"' in page and "/cases/" in page
    missing = client.get("/cases/999999/")
    assert missing.status_code == 404 and 'id="error-404"' in missing.content.decode()
    # The 500 page renders on its own (no context processors, no database).
    settings.DEBUG = False
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        response = server_error_handler(RequestFactory().get("/cases/"))
    assert response.status_code == 500 and b'id="error-500"' in response.content


def test_refusals_are_logged_without_a_traceback_and_faults_with_one(settings: Any) -> None:
    import logging
    import sys

    from django.core.exceptions import PermissionDenied

    from strokeaid_site.logging import ExpectedRefusalFilter

    assert "expected_refusals" in settings.LOGGING["handlers"]["console"]["filters"]

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except type(exc):
            info = sys.exc_info()
        return logging.LogRecord("django.request", logging.WARNING, "", 0, "x", (), info)

    refused, fault = record(PermissionDenied()), record(RuntimeError("boom"))
    assert ExpectedRefusalFilter().filter(refused) and refused.exc_info is None
    assert ExpectedRefusalFilter().filter(fault) and fault.exc_info is not None


RELAY = {"default": {"BACKEND": "core.channel_layers.DatabaseRelayChannelLayer"}}


@pytest.mark.django_db(transaction=True)
def test_an_event_from_a_worker_process_reaches_the_web_processs_websocket(
    make_user: Any, settings: Any
) -> None:
    """The embedded default (no Redis): a job event sent by another process (a real
    ``manage.py`` child, as a django-q2 worker is) reaches a websocket of this process."""
    from channels import layers
    from django.db import connection

    from tests.factories import CaseFactory

    settings.CHANNEL_LAYERS = RELAY
    layers.channel_layers.backends.clear()
    owner = make_user("neurologist", username="owner")
    case = CaseFactory(created_by=owner)
    job = UploadJob.objects.create(case=case, created_by=owner)

    def _emit() -> None:
        db = connection.settings_dict
        if connection.vendor == "sqlite":
            url = f"sqlite:///{db['NAME']}"  # the test database is a file (settings.test)
        else:
            url = (
                f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
                f"{db['NAME']}"
            )
        code = (
            "from strokeaid_site.events import job_event_send; "
            f"job_event_send('upload', {job.pk}, {{'status': 'done', 'progress': 1.0}})"
        )
        env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "", "LOG_LEVEL": "WARNING"}
        # The local settings take DATABASE_URL as given (the test settings would move a
        # SQLite database into their own temporary directory).
        env["DJANGO_SETTINGS_MODULE"] = "strokeaid_site.settings.local"
        env["STROKEAID_DATA_DIR"] = str(settings.STROKEAID["DATA_DIR"] / "child")
        done = _manage("shell", "-c", code, env=env)
        assert done.returncode == 0, done.stderr

    async def scenario() -> Any:
        communicator = _websocket(f"/ws/jobs/upload/{job.pk}/", owner)
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(_emit, thread_sensitive=False)()
        message = await communicator.receive_json_from(timeout=10)
        await communicator.disconnect()
        return message

    try:
        # A thread of its own: browser tests may leave an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            message = pool.submit(lambda: async_to_sync(scenario)()).result(timeout=120)
        assert message == {"status": "done", "progress": 1.0}
    finally:
        layers.channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_the_relay_drops_an_event_quickly_while_sqlite_is_locked() -> None:
    """On the embedded SQLite default the sender waits for the relay's write: with another
    connection holding the write lock, the event is dropped after a moment (the relay is best
    effort), not after the database's 20 s busy timeout; once the lock is gone it is stored."""
    import sqlite3
    import time

    from django.db import connection

    from core.channel_layers import RELAY_BUSY_MS, DatabaseRelayChannelLayer
    from core.models import ChannelEvent

    if connection.vendor != "sqlite":
        pytest.skip("SQLite's write lock (PostgreSQL has row locks)")
    layer = DatabaseRelayChannelLayer()
    message = {"type": "job.event", "payload": {"progress": 0.5}}
    holder = sqlite3.connect(connection.settings_dict["NAME"], timeout=1)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:  # an event loop of its own (see above)
            pool.submit(lambda: async_to_sync(layer.group_send)("job.upload.1", message)).result(60)
        waited = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert waited < RELAY_BUSY_MS / 1000 + 3, waited
    assert not ChannelEvent.objects.exists()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: async_to_sync(layer.group_send)("job.upload.1", message)).result(60)
    assert ChannelEvent.objects.filter(group="job.upload.1").count() == 1


def test_serve_runs_one_web_process_per_core_on_postgresql(monkeypatch) -> None:
    """One uvicorn process per core (at most four) on PostgreSQL; one on the embedded SQLite
    default."""
    from strokeaid_site import server

    monkeypatch.setattr(server.os, "sched_getaffinity", lambda _pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert server.default_web_processes(sqlite=False) == server.MAX_WEB_PROCESSES
    monkeypatch.setattr(server.os, "sched_getaffinity", lambda _pid: {0, 1})
    assert server.default_web_processes(sqlite=False) == 2
    assert server.default_web_processes(sqlite=True) == 1
