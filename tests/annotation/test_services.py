"""Annotation services and selectors: imports, consensus, training-ready data, queues, pages."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import IntegrityError

from annotation import selectors, services
from annotation.models import Annotation, AnnotationRevision
from cases import storage
from cases.models import AuditEvent, Case
from strokeaid_site.errors import ApplicationError, ForbiddenError

pytestmark = pytest.mark.django_db


def test_import_ground_truth_as_approved(data_manager, phantom_case, phantom_series):
    dwi = phantom_series["DWI"]
    truth = phantom_case.phantom.mask
    annotation = services.annotation_import_mask(
        user=data_manager, series=dwi, mask=truth, state="approved", note="phantom ground truth"
    )
    assert annotation.state == "approved" and annotation.annotator == data_manager
    revision = annotation.current_revision
    assert revision.source == "import" and revision.number == 1
    np.testing.assert_array_equal(selectors.mask_array(revision=revision), truth)
    counts = np.bincount(truth.ravel(), minlength=256)
    assert revision.label_counts == {str(v): int(counts[v]) for v in np.flatnonzero(counts[1:]) + 1}
    assert Case.objects.get(pk=phantom_case.pk).status == Case.Status.APPROVED
    ready = list(selectors.annotations_training_ready())
    assert [a.pk for a in ready] == [annotation.pk]


def test_prediction_accepted_as_draft_for_an_annotator(
    neurologist, reviewer, phantom_case, phantom_series
):
    dwi = phantom_series["DWI"]
    predicted = phantom_case.phantom.mask
    annotation = services.annotation_import_mask(
        user=neurologist, series=dwi, mask=predicted, source="prediction", note="model v3"
    )
    assert annotation.state == "draft" and annotation.annotator == neurologist
    assert annotation.current_revision.source == "prediction"
    # The annotator then edits it in the editor as their own mask (If-Match from the import).
    edited = predicted.copy()
    edited[edited == 2] = 0
    revision = services.mask_save(
        user=neurologist, series=dwi, array=edited, if_match=annotation.etag
    )
    assert revision.number == 2 and revision.annotation.pk == annotation.pk


def test_consensus_annotation_is_one_per_series(reviewer, phantom_case, phantom_series):
    dwi = phantom_series["DWI"]
    mask = phantom_case.phantom.mask
    first = services.annotation_import_mask(
        user=reviewer, series=dwi, mask=mask, state="approved", is_consensus=True
    )
    again = services.annotation_import_mask(
        user=reviewer, series=dwi, mask=mask, state="approved", is_consensus=True
    )
    assert first.pk == again.pk and again.revision_count == 2
    assert first.annotator is None and first.is_consensus
    with pytest.raises(IntegrityError):
        Annotation.objects.create(series=dwi, is_consensus=True)


def test_training_ready_needs_confirmed_case_and_approval(
    neurologist, reviewer, phantom_case, phantom_series
):
    dwi = phantom_series["DWI"]
    mask = phantom_case.phantom.mask
    revision = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    annotation = revision.annotation
    assert not selectors.annotations_training_ready().exists()  # draft
    services.annotation_submit(user=neurologist, annotation=annotation)
    assert not selectors.annotations_training_ready().exists()  # submitted
    services.annotation_approve(user=reviewer, annotation=annotation)
    assert selectors.annotations_training_ready().get().pk == annotation.pk
    Case.objects.filter(pk=phantom_case.pk).update(confirmed=False)
    assert not selectors.annotations_training_ready().exists()  # unconfirmed case


def test_latest_revision_for(neurologist, neurologist2, reviewer, phantom_case, phantom_series):
    dwi = phantom_series["DWI"]
    mask = phantom_case.phantom.mask
    assert selectors.annotation_latest_revision_for(series=dwi) is None
    r1 = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    r2 = services.mask_save(user=neurologist2, series=dwi, array=mask, if_match=None)
    assert selectors.annotation_latest_revision_for(series=dwi).pk == r2.pk
    assert selectors.annotation_latest_revision_for(series=dwi, annotator=neurologist).pk == r1.pk
    assert selectors.annotation_latest_revision_for(series=dwi, approved_only=True) is None
    consensus = services.annotation_import_mask(
        user=reviewer, series=dwi, mask=mask, state="approved", is_consensus=True
    )
    latest = selectors.annotation_latest_revision_for(series=dwi)
    assert latest.pk == consensus.current_revision_id


def test_failed_save_leaves_no_file_and_no_row(neurologist, phantom_series, monkeypatch):
    dwi = phantom_series["DWI"]
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    mask[2, 5:9, 5:9] = 1
    written: list[str] = []
    real_write = storage.write_array

    def write_then_remember(key, array):
        result = real_write(key, array)
        written.append(key)
        return result

    # The audit write fails after the mask file is on disk: all or nothing.
    monkeypatch.setattr(storage, "write_array", write_then_remember)
    monkeypatch.setattr(
        "annotation.services.revisions.audit_record",
        lambda **kw: (_ for _ in ()).throw(RuntimeError("disk full")),
    )
    with pytest.raises(RuntimeError):
        services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    assert written and not any(storage.exists(k) for k in written)
    assert not AnnotationRevision.objects.exists() and not Annotation.objects.exists()


def test_validation_messages(neurologist, phantom_series):
    dwi = phantom_series["DWI"]
    with pytest.raises(ApplicationError, match="3-D"):
        services.mask_validate(series=dwi, array=np.zeros((2, 2), np.uint8))
    with pytest.raises(ApplicationError, match="fractions"):
        services.mask_validate(series=dwi, array=np.full(tuple(dwi.shape), np.nan, np.float32))
    with pytest.raises(ApplicationError, match="Unsupported"):
        services.mask_validate(series=dwi, array=np.zeros(tuple(dwi.shape), np.complex64))
    checked = services.mask_validate(series=dwi, array=np.ones(tuple(dwi.shape), bool))
    assert checked.counts == {1: int(np.prod(dwi.shape))}


def test_only_neurologists_save_and_reviewers_review(
    clinician, data_manager, reviewer, neurologist, phantom_series
):
    dwi = phantom_series["DWI"]
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    for user in (clinician, data_manager, reviewer):
        with pytest.raises(ForbiddenError):
            services.mask_save(user=user, series=dwi, array=mask, if_match=None)
    revision = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    services.annotation_submit(user=neurologist, annotation=revision.annotation)
    with pytest.raises(ForbiddenError):
        services.annotation_approve(user=data_manager, annotation=revision.annotation)


def test_queues_and_pages(
    client,
    neurologist,
    neurologist2,
    reviewer,
    phantom_case,
    phantom_series,
    django_assert_max_num_queries,
):
    mask = phantom_case.phantom.mask
    annotations = {}
    for kind in ("DWI", "ADC", "FLAIR"):
        rev = services.mask_save(
            user=neurologist, series=phantom_series[kind], array=mask, if_match=None
        )
        annotations[kind] = rev.annotation
    services.mask_save(user=neurologist2, series=phantom_series["DWI"], array=mask, if_match=None)
    for kind in ("ADC", "FLAIR"):
        services.annotation_submit(user=neurologist, annotation=annotations[kind])
    services.annotation_return(user=reviewer, annotation=annotations["ADC"], comment="Too wide")

    mine = list(selectors.my_work_for_user(user=neurologist))
    assert [a.state for a in mine] == ["returned", "draft", "submitted"]
    queue = list(selectors.review_queue_for_user(user=reviewer))
    assert [a.series.kind for a in queue] == ["FLAIR"]
    assert not selectors.review_queue_for_user(user=neurologist).exists()

    client.force_login(neurologist)
    client.get("/annotation/my-work/")
    with django_assert_max_num_queries(12):
        page = client.get("/annotation/my-work/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.index("Too wide") < html.index("Submitted")

    client.force_login(reviewer)
    with django_assert_max_num_queries(12):
        page = client.get("/annotation/review/")
    assert page.status_code == 200 and f"?annotator={neurologist.pk}" in page.content.decode()

    # The case page shows the annotation panel (registered through cases.panels).
    page = client.get(f"/cases/{phantom_case.pk}/")
    assert page.status_code == 200 and 'id="annotation-panel"' in page.content.decode()
    # The editor in review mode carries the annotator's masks; nav items are there.
    page = client.get(f"/annotation/cases/{phantom_case.pk}/?annotator={neurologist.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-mode="review"' in html and "/annotation/review/" in html
    assert f"/api/annotations/{annotations['DWI'].pk}/mask.raw" in html


def test_editor_page_for_roles(client, clinician, neurologist, data_manager, phantom_case):
    client.force_login(clinician)
    assert client.get(f"/annotation/cases/{phantom_case.pk}/").status_code == 404
    client.force_login(data_manager)
    page = client.get(f"/annotation/cases/{phantom_case.pk}/")
    assert page.status_code == 200 and 'data-mode="view"' in page.content.decode()
    assert 'id="save-button"' not in page.content.decode()
    client.force_login(neurologist)
    page = client.get(f"/annotation/cases/{phantom_case.pk}/")
    html = page.content.decode()
    assert 'data-mode="edit"' in html and 'id="save-button"' in html
    for kind in ("DWI", "ADC", "FLAIR"):
        assert f'id="viewport-{kind}"' in html
    assert "data-prediction-url" not in html  # no provider registered: toggle hidden


def test_prediction_overlay_hook(client, neurologist, phantom_case):
    from annotation import hooks

    def provider(*, series, user):
        return f"/api/test-predictions/{series.pk}.raw" if series.kind == "DWI" else None

    hooks.register_prediction_overlay(provider)
    try:
        client.force_login(neurologist)
        html = client.get(f"/annotation/cases/{phantom_case.pk}/").content.decode()
        assert html.count("data-prediction-url=") == 1
    finally:
        hooks._providers.remove(provider)


def test_every_change_is_audited(neurologist, reviewer, phantom_series):
    dwi = phantom_series["DWI"]
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    revision = services.mask_save(user=neurologist, series=dwi, array=mask, if_match=None)
    services.annotation_revision_restore(user=neurologist, annotation=revision.annotation, number=1)
    verbs = set(AuditEvent.objects.values_list("verb", flat=True))
    assert {"annotation.revision_saved", "case.updated"} <= verbs
    restored = AuditEvent.objects.filter(verb="annotation.revision_saved").first()
    assert restored.data["restored_from"] == 1 and restored.actor == neurologist


def test_the_case_is_updated_when_its_masks_change_state(
    neurologist, reviewer, phantom_case, phantom_series
):
    mask = np.zeros(tuple(phantom_series["DWI"].shape), np.uint8)
    mask[3, 10:20, 10:20] = 2
    revision = services.mask_save(
        user=neurologist, series=phantom_series["DWI"], array=mask, if_match=None
    )
    annotation = Annotation.objects.get(pk=revision.annotation_id)
    stamps = [Case.objects.get(pk=phantom_case.pk).updated_at]
    services.annotation_submit(user=neurologist, annotation=annotation)
    stamps.append(Case.objects.get(pk=phantom_case.pk).updated_at)
    annotation.refresh_from_db()
    services.annotation_approve(user=reviewer, annotation=annotation)
    stamps.append(Case.objects.get(pk=phantom_case.pk).updated_at)
    assert stamps[0] < stamps[1] < stamps[2]


def test_a_mask_imported_for_an_annotator_is_theirs_in_list_and_history(
    reviewer, neurologist, phantom_case, phantom_series
):
    annotation = services.annotation_import_mask(
        user=reviewer,
        annotator=neurologist,
        series=phantom_series["DWI"],
        mask=phantom_case.phantom.mask,
        state="approved",
    )
    assert annotation.annotator == neurologist
    assert annotation.current_revision.created_by == neurologist  # same name in both places
    assert annotation.reviewer == reviewer  # who imported and approved it
