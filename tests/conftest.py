"""Fixtures shared by every test module: users per role, API clients, browser launch args."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def _english_by_default() -> Any:
    """Each test starts in English: a request in Russian must not leak into the next test."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture(autouse=True)
def _reference_data_in_transactional_tests(request: pytest.FixtureRequest) -> None:
    """Transactional tests (live server, websockets) flush every table after each test, data
    migrations included: put the default label set and the role groups back before each one,
    with the migration's own (idempotent) function."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction"))
    if not (transactional or {"transactional_db", "live_server"} & set(request.fixturenames)):
        return
    import importlib

    from django.apps import apps

    request.getfixturevalue("transactional_db")
    importlib.import_module("cases.migrations.0002_default_labels_and_roles").forwards(apps, None)


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    def _make(*roles: str, username: str | None = None, **kwargs: Any) -> Any:
        extra = {"username": username} if username else {}
        return UserFactory(roles=list(roles), **extra, **kwargs)

    return _make


@pytest.fixture
def neurologist(make_user: Callable[..., Any]) -> Any:
    return make_user("neurologist", username="neuro")


@pytest.fixture
def neurologist2(make_user: Callable[..., Any]) -> Any:
    return make_user("neurologist", username="neuro2")


@pytest.fixture
def reviewer(make_user: Callable[..., Any]) -> Any:
    return make_user("reviewer", username="senior")


@pytest.fixture
def data_manager(make_user: Callable[..., Any]) -> Any:
    return make_user("data_manager", username="curator")


@pytest.fixture
def clinician(make_user: Callable[..., Any]) -> Any:
    return make_user("clinician", username="doctor")


@pytest.fixture
def api_client_for() -> Callable[[Any], APIClient]:
    """An API client authenticated with the user's token (as outside clients are)."""

    def _client(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return _client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


# --- Browser (pytest-playwright with Debian's Chromium) -------------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (make test installs it)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "headless": True,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """The page tests drive the app with string predicates (``page.wait_for_function``), which
    Playwright evaluates with ``eval``: the site's Content-Security-Policy forbids that, so these
    contexts bypass it. tests/platform/test_csp_browser.py opens its own context that enforces
    the policy and fails on any violation."""
    return {**browser_context_args, "bypass_csp": True}


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Saves a screenshot of the page when a browser test fails (CI keeps test-artifacts/)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "page" in getattr(item, "funcargs", {}):
        page = item.funcargs["page"]
        # The page may already be closed: a missing screenshot must not hide the failure.
        with contextlib.suppress(Exception):
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{item.name}.png"), full_page=True)


# --- Phantom cases ---------------------------------------------------------------------------
# A small synthetic case (DWI/ADC/FLAIR, 8 x 64 x 64) stored through the real series service.
# Shared by every app's tests: `phantom_case` (the Case, with `.phantom` = the PhantomCase and
# its ground-truth mask) and `phantom_series` ({"DWI": Series, "ADC": ..., "FLAIR": ...}).
PHANTOM_SHAPE = (8, 64, 64)
PHANTOM_SEED = 7
PHANTOM_ETIOLOGY = "cardioembolic"


@pytest.fixture(scope="session")
def phantom_arrays() -> Any:
    """The generated phantom (generated once per test session; treat as read-only)."""
    from cases.phantoms import generate_case

    return generate_case(etiology=PHANTOM_ETIOLOGY, seed=PHANTOM_SEED, shape=PHANTOM_SHAPE)


@pytest.fixture
def phantom_case(db: Any, neurologist: Any, phantom_arrays: Any) -> Any:
    """A confirmed cardioembolic case created by ``neurologist`` with DWI, ADC and FLAIR."""
    from cases.services.case import case_create
    from cases.services.series import series_create_from_phantom

    phantom = phantom_arrays
    case = case_create(user=neurologist, code="PH-0007", etiology=PHANTOM_ETIOLOGY, confirmed=True)
    series_create_from_phantom(case=case, phantom=phantom, uid_stem=f"{PHANTOM_SEED}00")
    case.refresh_from_db()
    case.phantom = phantom
    return case


@pytest.fixture
def phantom_series(phantom_case: Any) -> dict[str, Any]:
    """The phantom case's series by kind, volumes joined."""
    from cases.models import Series

    series = {s.kind: s for s in Series.objects.filter(case=phantom_case).select_related("volume")}
    for s in series.values():
        s.case = phantom_case  # so that s.case.phantom (the ground truth) is at hand
    return series
