"""Agreement between annotators (pairwise Dice, implied etiology, kappas) and adjudication
into a consensus annotation (pick, majority vote) through the API."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from annotation.models import Annotation
from annotation.selectors import mask_array
from annotation.services import annotation_import_mask
from cases.models import Series
from inference.review.agreement import implied_etiology, majority_vote


def test_majority_vote_and_implied_etiology() -> None:
    a = np.array([[[1, 1, 0, 2, 0]]], dtype=np.uint8)
    b = np.array([[[1, 2, 0, 2, 0]]], dtype=np.uint8)
    c = np.array([[[0, 2, 1, 0, 0]]], dtype=np.uint8)
    # voxel 0: 2/3 lesion (1,1) -> 1; voxel 1: 3/3, votes 1x1 2x2 -> 2; voxel 2: 1/3 -> 0;
    # voxel 3: 2/3 lesion, both 2 -> 2.
    assert majority_vote([a, b, c], label_values=[1, 2]).tolist() == [[[1, 2, 0, 2, 0]]]
    # Two raters, tie 1 vs 2 on a voxel both call lesion: the label with more total volume.
    tie = majority_vote([a, b], label_values=[1, 2])
    assert tie.tolist() == [[[1, 1, 0, 2, 0]]]  # totals: 1 -> 3 voxels, 2 -> 3: lower value wins
    assert implied_etiology({"1": 10, "2": 30}) == 2
    assert implied_etiology({"1": 5, "2": 5}) == 1
    assert implied_etiology({}) is None


@pytest.fixture
def drawn_series(
    make_phantom_case: Any, neurologist: Any, neurologist2: Any, data_manager: Any
) -> Any:
    case = make_phantom_case("cardioembolic", seed=21, mask=False)
    dwi = Series.objects.get(case=case, kind="DWI")
    shape = tuple(dwi.shape)
    first = np.zeros(shape, dtype=np.uint8)
    second = np.zeros(shape, dtype=np.uint8)
    first[2, 10:20, 10:20] = 2  # 100 voxels cardioembolic
    second[2, 15:25, 10:20] = 2  # 100 voxels, 50 shared
    second[3, 40:42, 40:42] = 1  # 4 voxels atherothrombotic only in the second
    annotation_import_mask(user=neurologist, series=dwi, mask=first)
    annotation_import_mask(user=neurologist2, series=dwi, mask=second)
    dwi.masks = (first, second)
    return dwi


def test_agreement_api(
    drawn_series: Any,
    reviewer: Any,
    neurologist: Any,
    neurologist2: Any,
    api_client_for: Any,
    clinician: Any,
) -> None:
    body = api_client_for(reviewer).get(f"/api/series/{drawn_series.pk}/agreement/").json()
    assert len(body["annotations"]) == 2
    assert {a["annotator"] for a in body["annotations"]} == {
        f"annotator-{neurologist.pk}",
        f"annotator-{neurologist2.pk}",
    }
    assert all(a["etiology"] == "cardioembolic" for a in body["annotations"])
    assert body["etiology_agreement"] is True
    (pair,) = body["pairwise"]
    assert pair["dice"]["cardioembolic"] == pytest.approx(0.5)  # 2*50 / (100 + 100)
    assert pair["dice"]["atherothrombotic"] == 0.0  # only one annotator drew it
    assert pair["dice"]["lacunar"] == 1.0  # absent from both
    assert pair["lesion_dice"] == pytest.approx(2 * 50 / (100 + 104), abs=1e-4)
    (cohen,) = body["kappa"]["cohen"]
    assert cohen["series"] == 1 and cohen["kappa"] == 1.0  # one shared series, same etiology
    assert body["kappa"]["fleiss"]["series"] == 1
    # No user names in the answer.
    assert neurologist.username not in str(body)
    assert (
        api_client_for(clinician).get(f"/api/series/{drawn_series.pk}/agreement/").status_code
        == 403
    )


def test_consensus_pick_and_majority(
    drawn_series: Any, reviewer: Any, neurologist: Any, api_client_for: Any, client: Any
) -> None:
    url = f"/api/series/{drawn_series.pk}/consensus/"
    assert (
        api_client_for(neurologist).post(url, {"method": "majority"}, format="json").status_code
        == 403
    )
    api = api_client_for(reviewer)
    own = Annotation.objects.get(series=drawn_series, annotator=neurologist)
    response = api.post(url, {"method": "pick", "annotation": own.pk}, format="json")
    assert response.status_code == 201, response.json()
    consensus = Annotation.objects.get(series=drawn_series, is_consensus=True)
    assert consensus.state == "approved"
    assert np.array_equal(mask_array(revision=consensus.current_revision), drawn_series.masks[0])

    response = api.post(url, {"method": "majority"}, format="json")
    assert response.status_code == 201
    consensus.refresh_from_db()
    assert consensus.revision_count == 2
    voted = mask_array(revision=consensus.current_revision)
    # Two raters: a voxel needs both (> half) -> the intersection, label 2.
    expected = np.zeros_like(voted)
    expected[2, 15:20, 10:20] = 2
    assert np.array_equal(voted, expected)
    assert api.post(url, {"method": "pick", "annotation": 999999}, format="json").status_code == 400
    assert api.post(url, {"method": "staple"}, format="json").status_code == 400

    client.force_login(reviewer)
    page = client.get(f"/models/review/series/{drawn_series.pk}/agreement/")
    assert page.status_code == 200 and b'id="consensus-form"' in page.content
    # The adjudicating reviewer sees whose mask is whose; the API keeps pseudonyms.
    html = page.content.decode()
    assert ">neuro<" in html and ">neuro2<" in html and "annotator-" not in html
