"""Content-Security-Policy: every page is served with the policy and loads in Chromium without
a single violation (editor, model pages with Chart.js, review, exports, Swagger UI, admin)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-Word-123"  # tests.factories.UserFactory's password
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + e.sourceFile);
});
"""


@pytest.fixture
def page(browser: Any, browser_context_args: dict[str, Any]) -> Any:
    """A page whose context enforces the Content-Security-Policy (the shared fixture's
    contexts bypass it)."""
    context = browser.new_context(**{**browser_context_args, "bypass_csp": False})
    yield context.new_page()
    context.close()


def test_every_page_loads_without_csp_violations(
    page: Any, live_server: Any, make_user: Any, phantom_case: Any, registered_model: Any
) -> None:
    from cases.models import Series

    admin = make_user(
        "neurologist",
        "reviewer",
        "data_manager",
        "clinician",
        username="boss",
        is_staff=True,
        is_superuser=True,
    )
    model = registered_model()
    dwi = Series.objects.get(case=phantom_case, kind="DWI")
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(WATCH)
    page.add_init_script("window.STROKEAID_AUTOSAVE_MS = 0;")
    page.goto(f"{live_server.url}/accounts/login/")
    header = page.evaluate(
        "() => fetch(location.href).then(r => r.headers.get('content-security-policy'))"
    )
    assert "script-src 'self'" in header and "object-src 'none'" in header
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_selector(".mainnav")
    pages = {
        "/cases/": "#case-table",
        f"/cases/{phantom_case.pk}/": "h1",
        f"/cases/{phantom_case.pk}/upload/": "h1",
        f"/annotation/cases/{phantom_case.pk}/": "body[data-editor-ready='1']",
        "/annotation/my-work/": "h1",
        "/annotation/review/": "h1",
        "/models/": "h1",
        f"/models/{model.pk}/review/": "h1",
        f"/models/review/series/{dwi.pk}/": "h1",
        "/models/exports/": "h1",
        f"/models/cases/{phantom_case.pk}/predictions/": "h1",
        "/api/docs/": ".swagger-ui .info",
        "/admin/": "#content",
    }
    seen: dict[str, list[str]] = {}
    for path, ready in pages.items():
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        page.wait_for_selector(ready, timeout=20000)
        page.wait_for_timeout(300)  # late scripts (charts, Swagger) run
        violations = page.evaluate("() => window.__csp")
        if violations:
            seen[path] = violations
    assert not seen, seen
    assert not console, console
