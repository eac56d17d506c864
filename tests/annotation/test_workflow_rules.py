"""Annotation workflow rules: one etiology per confirmed case on submit/approve/approved
import, the old review comment cleared on resubmission, the editor's default masks for a user
without their own, and unarchiving recomputing the status from the annotations."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from annotation import services
from annotation.models import Annotation
from cases.models import Case
from cases.phantoms import generate_case
from cases.services.case import case_update
from strokeaid_site.errors import ApplicationError

pytestmark = pytest.mark.django_db


def _mask(dwi, value: int = 2, extra: int | None = None) -> np.ndarray:
    mask = np.zeros(tuple(dwi.shape), np.uint8)
    mask[3, 10:20, 10:20] = value
    if extra is not None:
        mask[4, 30:35, 30:36] = extra
    return mask


def _config(html: str) -> dict:
    match = re.search(r'<script id="editor-config" type="application/json">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))


def test_mixed_labels_refused_on_confirmed_case(neurologist, reviewer, dwi):
    """Confirmed cardioembolic (2): a mask with an atherothrombotic (1) lesion cannot go."""
    revision = services.mask_save(
        user=neurologist, series=dwi, array=_mask(dwi, 2, extra=1), if_match=None
    )
    annotation = revision.annotation
    with pytest.raises(ApplicationError) as refused:
        services.annotation_submit(user=neurologist, annotation=annotation)
    assert refused.value.status_code == 400
    assert refused.value.extra == {
        "field": "etiology",
        "etiology": "cardioembolic",
        "mask_labels": ["atherothrombotic"],
    }
    assert "Relabel" in refused.value.message
    annotation.refresh_from_db()
    assert annotation.state == "draft"

    # Unconfirmed (still in work-up): any label may be submitted ...
    case = dwi.case
    case_update(user=neurologist, case=case, data={"confirmed": False})
    services.annotation_submit(user=neurologist, annotation=annotation)
    # ... but once confirmed, the reviewer cannot approve it.
    case_update(user=neurologist, case=case, data={"confirmed": True})
    with pytest.raises(ApplicationError) as refused:
        services.annotation_approve(user=reviewer, annotation=annotation)
    assert refused.value.status_code == 400 and "approving" in refused.value.message
    annotation.refresh_from_db()
    assert annotation.state == "submitted"
    # Correcting the etiology is the other way out ... it is still mixed: refused again.
    case_update(user=neurologist, case=case, data={"etiology": "atherothrombotic"})
    with pytest.raises(ApplicationError):
        services.annotation_approve(user=reviewer, annotation=annotation)


def test_mixed_labels_api_message(api_client_for, neurologist, reviewer, dwi):
    revision = services.mask_save(user=neurologist, series=dwi, array=_mask(dwi, 4), if_match=None)
    response = api_client_for(neurologist).post(
        f"/api/annotations/{revision.annotation.pk}/submit/"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["extra"]["mask_labels"] == ["lacunar"] and body["message"]


def test_approved_import_checks_etiology_and_phantom_truth_passes(neurologist, dwi):
    with pytest.raises(ApplicationError):
        services.annotation_import_mask(
            user=neurologist, series=dwi, mask=_mask(dwi, 1), state="approved"
        )
    # A draft import (e.g. a model prediction to correct) may hold any label.
    services.annotation_import_mask(user=neurologist, series=dwi, mask=_mask(dwi, 1))
    # Phantom ground truth carries the case's etiology: imported as approved.
    phantom = generate_case(etiology="cardioembolic", seed=7, shape=tuple(dwi.shape))
    consensus = services.annotation_import_mask(
        user=neurologist, series=dwi, mask=phantom.mask, state="approved", is_consensus=True
    )
    assert consensus.state == "approved"


def test_resubmission_clears_the_old_review_comment(client, neurologist, reviewer, dwi):
    revision = services.mask_save(user=neurologist, series=dwi, array=_mask(dwi), if_match=None)
    annotation = services.annotation_submit(user=neurologist, annotation=revision.annotation)
    annotation = services.annotation_approve(
        user=reviewer, annotation=annotation, comment="Phantom ground truth."
    )
    services.mask_save(user=neurologist, series=dwi, array=_mask(dwi), if_match=annotation.etag)
    annotation.refresh_from_db()
    assert annotation.state == "draft"
    client.force_login(neurologist)
    # a draft does not show the comment of the previous review
    assert "Phantom ground truth." not in client.get("/annotation/my-work/").content.decode()
    annotation = services.annotation_submit(user=neurologist, annotation=annotation)
    assert annotation.review_comment == ""
    assert "Phantom ground truth." not in client.get("/annotation/my-work/").content.decode()


def test_editor_defaults_to_the_relevant_masks(
    client, neurologist, neurologist2, reviewer, data_manager, phantom_series
):
    dwi, adc = phantom_series["DWI"], phantom_series["ADC"]
    approved = services.annotation_import_mask(
        user=reviewer, series=dwi, mask=_mask(dwi), state="approved", annotator=neurologist2
    )
    submitted = services.mask_save(user=neurologist, series=dwi, array=_mask(dwi), if_match=None)
    services.annotation_submit(user=neurologist, annotation=submitted.annotation)
    url = f"/annotation/cases/{dwi.case_id}/"

    # The reviewer lands on the work waiting for review, read-only, with review buttons.
    client.force_login(reviewer)
    config = _config(client.get(url).content.decode())
    assert config["mode"] == "review" and config["viewed_annotator"] == neurologist.pk
    assert config["can_review"] and not config["can_annotate"]
    dwi_conf = next(s for s in config["series"] if s["kind"] == "DWI")
    assert dwi_conf["annotation"]["state"] == "submitted" and dwi_conf["mask_url"]

    # Without work to review, others see the approved mask (consensus first when present).
    client.force_login(data_manager)
    config = _config(client.get(url).content.decode())
    # (a data manager does not review: the approved mask beats the submitted one)
    assert config["viewed_annotator"] == neurologist2.pk
    services.annotation_approve(user=reviewer, annotation=submitted.annotation)
    config = _config(client.get(url).content.decode())
    assert config["mode"] == "review"
    assert config["viewed_annotator"] in (neurologist.pk, approved.annotator_id)
    services.annotation_import_mask(
        user=reviewer, series=dwi, mask=_mask(dwi), state="approved", is_consensus=True
    )
    config = _config(client.get(url).content.decode())
    assert config["viewed_annotator"] == "consensus" and not config["can_annotate"]
    assert "?annotator=consensus" in client.get(url).content.decode()

    # A neurologist always starts on their own masks (independent annotation).
    services.mask_save(user=neurologist2, series=adc, array=_mask(adc), if_match=None)
    client.force_login(neurologist2)
    config = _config(client.get(url).content.decode())
    assert config["mode"] == "edit" and config["viewed_annotator"] == neurologist2.pk


def test_unarchive_recomputes_status_from_annotations(neurologist, data_manager, reviewer, dwi):
    revision = services.mask_save(user=neurologist, series=dwi, array=_mask(dwi), if_match=None)
    case = Case.objects.get(pk=dwi.case_id)
    assert case.status == "annotating"
    case_update(user=data_manager, case=case, data={"archived": True})
    # work goes on while archived; the status stays archived
    services.annotation_submit(user=neurologist, annotation=revision.annotation)
    case.refresh_from_db()
    assert case.status == "archived"
    case = case_update(user=data_manager, case=case, data={"archived": False})
    assert case.status == "in_review"  # not the "annotating" it had before archiving
    assert Annotation.objects.get(pk=revision.annotation.pk).state == "submitted"
