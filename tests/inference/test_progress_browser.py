"""Progress pages in real Chromium: a job finished by another process (the worker) shows up
without any websocket event, through the REST poll of static/inference/jobs.js."""

from __future__ import annotations

from typing import Any

import pytest

from inference.models import ExportJob

# live_server runs in another thread: the data must be committed (transaction=True).
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pass-Word-123"  # tests.factories.UserFactory's password


def test_exports_page_follows_a_job_finished_elsewhere(
    page: Any, live_server: Any, data_manager: Any
) -> None:
    # A queued row as the export service leaves it; the test then plays the worker process,
    # whose channel events never reach the web process with the in-memory layer.
    job = ExportJob.objects.create(format="nnunet", created_by=data_manager)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", data_manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_selector(".mainnav")
    page.goto(f"{live_server.url}/models/exports/")
    row = page.locator(f"tr[data-export='{job.pk}']")
    assert row.locator(".status").inner_text().strip() == "Queued"

    ExportJob.objects.filter(pk=job.pk).update(status="running", progress=0.5)
    page.wait_for_selector(f"tr[data-export='{job.pk}'][data-status='running']", timeout=8000)
    assert row.locator(".status").inner_text().strip() == "Running"
    ExportJob.objects.filter(pk=job.pk).update(status="failed", progress=1.0, error="disk full")
    page.wait_for_selector(f"tr[data-export='{job.pk}'][data-status='failed']", timeout=8000)
    assert row.locator(".status").inner_text().strip() == "Failed: disk full"
