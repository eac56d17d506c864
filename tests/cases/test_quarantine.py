"""A quarantined series explains itself on the case page, stays hidden from everyone but the
data manager, and is released (with an audited note) or deleted by one."""

from __future__ import annotations

from typing import Any

import pytest

from cases import storage
from cases.models import AuditEvent, Series
from tests.cases.upload_fixtures import mr_dataset, uploaded
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


def _quarantined_case(api_client_for: Any, neurologist: Any) -> tuple[Any, Series]:
    case = CaseFactory(created_by=neurologist)
    files = [
        uploaded(f"{k}.dcm", mr_dataset(ipp=(0, 0, 2.0 * k), instance=k, BurnedInAnnotation="YES"))
        for k in range(3)
    ]
    response = api_client_for(neurologist).post(
        f"/api/cases/{case.pk}/uploads/", {"files": files}, format="multipart"
    )
    assert response.status_code == 201
    series = Series.objects.select_related("volume").get(case=case)
    assert series.quarantined
    return case, series


def test_case_page_says_why_and_hides_the_picture_from_non_managers(
    api_client_for, client, neurologist, data_manager
):
    case, series = _quarantined_case(api_client_for, neurologist)
    client.force_login(neurologist)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert "BurnedInAnnotation = YES" in page and "burned into the pixels" in page
    assert f"/api/series/{series.pk}/slices/" not in page  # no thumbnail
    assert 'class="quarantine-release"' not in page
    denied = client.post(
        f"/cases/{case.pk}/series/{series.pk}/quarantine/", {"action": "release", "note": "ok"}
    )
    assert denied.status_code == 403
    series.refresh_from_db()
    assert series.quarantined

    client.force_login(data_manager)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert f"/api/series/{series.pk}/slices/" in page and 'class="quarantine-release"' in page
    # A release needs a note of what was checked.
    client.post(f"/cases/{case.pk}/series/{series.pk}/quarantine/", {"action": "release"})
    series.refresh_from_db()
    assert series.quarantined
    client.post(
        f"/cases/{case.pk}/series/{series.pk}/quarantine/",
        {"action": "release", "note": "all slices viewed, no text"},
    )
    series.refresh_from_db()
    assert not series.quarantined
    event = AuditEvent.objects.get(verb="series.quarantine_released")
    assert event.actor == data_manager
    assert event.data == {
        "reason": "Flagged with burned-in annotation (BurnedInAnnotation = YES).",
        "note": "all slices viewed, no text",
    }


def test_a_quarantined_series_can_be_deleted_with_its_file(
    api_client_for, client, neurologist, data_manager, django_capture_on_commit_callbacks
):
    case, series = _quarantined_case(api_client_for, neurologist)
    key = series.volume.key
    assert storage.exists(key)
    client.force_login(data_manager)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/cases/{case.pk}/series/{series.pk}/quarantine/", {"action": "delete"})
    assert not Series.objects.filter(pk=series.pk).exists()
    assert not storage.exists(key)
    assert AuditEvent.objects.filter(verb="series.deleted").count() == 1
