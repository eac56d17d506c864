"""Model promotion is a decision: the candidate against the active model on the same held-out
cases, confirmation, and an audited override reason when the candidate is worse."""

from __future__ import annotations

import pytest

from cases.models import AuditEvent
from inference.models import DatasetItem, ModelVersion
from inference.services.promotion import comparison_get, shared_test_items

pytestmark = pytest.mark.django_db


def test_registration_never_replaces_an_active_model(two_models):
    active, candidate, _cases = two_models(candidate_good=True)
    active.refresh_from_db()
    candidate.refresh_from_db()
    assert active.is_active and not candidate.is_active  # activate=True was not enough


def test_worse_candidate_needs_an_audited_override_reason(two_models, api_client_for, data_manager):
    active, candidate, cases = two_models(candidate_good=False)
    client = api_client_for(data_manager)
    refused = client.post(f"/api/models/{candidate.pk}/activate/", {}, format="json")
    assert refused.status_code == 409
    body = refused.json()
    assert "worse than the active model" in body["message"]
    comparison = body["extra"]["comparison"]
    assert comparison["n"] == len(cases) and sorted(comparison["cases"]) == sorted(cases)
    assert set(comparison["worse_on"]) == {"dice", "macro_f1"}
    assert comparison["candidate_numbers"]["dice"]["value"] == 0.0
    assert comparison["active_numbers"]["dice"]["value"] == 1.0
    assert comparison["active_numbers"]["macro_f1"]["n"] == len(cases)
    assert list(ModelVersion.objects.filter(is_active=True)) == [active]

    blank = client.post(
        f"/api/models/{candidate.pk}/activate/", {"override_reason": "  "}, format="json"
    )
    assert blank.status_code == 409
    ok = client.post(
        f"/api/models/{candidate.pk}/activate/",
        {"override_reason": "new scanner protocol; active model fails on it"},
        format="json",
    )
    assert ok.status_code == 200, ok.json()
    assert list(ModelVersion.objects.filter(is_active=True)) == [candidate]
    event = AuditEvent.objects.filter(verb="model.activate").latest("id")
    assert event.data["override_reason"] == "new scanner protocol; active model fails on it"
    assert event.data["compared_with"] == active.pk
    assert event.data["shared_cases"] == len(cases)
    assert event.data["replaced"] == [active.pk]


def test_better_candidate_is_activated_after_the_comparison(
    two_models, api_client_for, data_manager
):
    active, candidate, cases = two_models(candidate_good=True)
    response = api_client_for(data_manager).post(f"/api/models/{candidate.pk}/activate/")
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    found = comparison_get(candidate=candidate, active=active)
    assert found is not None and not found["worse"] and found["n"] == len(cases)
    event = AuditEvent.objects.filter(verb="model.activate").latest("id")
    assert "override_reason" not in event.data and event.data["shared_cases"] == len(cases)


def test_cases_the_active_model_trained_on_are_not_shared(two_models, data_manager):
    active, candidate, cases = two_models(candidate_good=True)
    # The active model now claims the candidate's first test case as a training case.
    from inference.models import DatasetSnapshot

    snapshot = DatasetSnapshot.objects.create(
        name="active's", label_set=active.label_set, created_by=data_manager
    )
    DatasetItem.objects.create(
        snapshot=snapshot, case_id=cases[0], split="train", case_code="x", revisions=[]
    )
    ModelVersion.objects.filter(pk=active.pk).update(dataset=snapshot)
    active.refresh_from_db()
    shared = [i.case_id for i in shared_test_items(candidate=candidate, active=active)]
    assert shared == sorted(cases[1:])


def test_activation_page_shows_the_comparison_and_asks_for_a_reason(
    two_models, client, data_manager, django_capture_on_commit_callbacks
):
    active, candidate, cases = two_models(candidate_good=False)
    client.force_login(data_manager)
    models_page = client.get("/models/").content.decode()
    assert f'href="/models/{candidate.pk}/activate/"' in models_page
    # First visit: the comparison is queued (a worker computes it; tests run tasks inline).
    with django_capture_on_commit_callbacks(execute=True):
        first = client.get(f"/models/{candidate.pk}/activate/").content.decode()
    assert 'id="comparison-pending"' in first and 'http-equiv="refresh"' in first
    page = client.get(f"/models/{candidate.pk}/activate/").content.decode()
    assert 'id="comparison-table"' in page and 'id="worse-warning"' in page
    assert 'name="override_reason"' in page and 'id="small-sample"' in page
    assert f"same {len(cases)} held-out cases" in page
    # Without a reason: refused, nothing changes.
    refused = client.post(f"/models/{candidate.pk}/activate/", {}, follow=True)
    assert "needs an override reason" in refused.content.decode()
    assert list(ModelVersion.objects.filter(is_active=True)) == [active]
    done = client.post(
        f"/models/{candidate.pk}/activate/", {"override_reason": "checked by hand"}, follow=True
    )
    assert done.status_code == 200
    assert list(ModelVersion.objects.filter(is_active=True)) == [candidate]
