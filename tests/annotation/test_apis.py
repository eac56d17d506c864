"""Mask and review APIs: the public contract (API.md), every bad input, permissions, locking."""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
import pytest

from annotation.models import Annotation, AnnotationRevision
from annotation.selectors import mask_array
from cases.models import AuditEvent, Case

from .conftest import nifti_array, nifti_bytes

pytestmark = pytest.mark.django_db


def put_nifti(client: Any, series: Any, body: bytes, etag: str | None = None) -> Any:
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    return client.put(
        f"/api/series/{series.pk}/mask.nii.gz", body, content_type="application/gzip", **headers
    )


def put_raw(client: Any, series: Any, array: np.ndarray, etag: str | None = None, gz=False) -> Any:
    headers = {"HTTP_IF_MATCH": etag} if etag else {}
    body = array.astype(np.uint8).tobytes()
    if gz:
        body = gzip.compress(body)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    return client.put(
        f"/api/series/{series.pk}/mask.raw",
        body,
        content_type="application/octet-stream",
        **headers,
    )


def test_nifti_first_save_get_and_update(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    assert client.get(f"/api/series/{dwi.pk}/mask.nii.gz").status_code == 404

    r = put_nifti(client, dwi, nifti_bytes(lesion_mask, dwi.affine))
    assert r.status_code == 200, r.content
    etag = r["ETag"]
    body = r.json()
    assert body["etag"] == etag and body["state"] == "draft"
    assert body["revision"]["number"] == 1
    assert body["revision"]["label_counts"] == {"1": 30, "2": 100}
    z, y, x = dwi.spacing
    assert body["revision"]["volumes_ml"]["2"] == pytest.approx(100 * z * y * x / 1000, abs=1e-3)

    r = client.get(f"/api/series/{dwi.pk}/mask.nii.gz")
    assert r.status_code == 200 and r["ETag"] == etag
    got = nifti_array(r.content)
    np.testing.assert_array_equal(got, lesion_mask)

    changed = lesion_mask.copy()
    changed[5, 0:2, 0:2] = 3
    r2 = put_nifti(client, dwi, nifti_bytes(changed, dwi.affine), etag=etag)
    assert r2.status_code == 200
    assert r2["ETag"] != etag
    case = Case.objects.get(pk=dwi.case_id)
    assert case.status == Case.Status.ANNOTATING
    assert AuditEvent.objects.filter(verb="annotation.revision_saved").count() == 2


def test_identical_save_still_changes_etag(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    e1 = put_raw(client, dwi, lesion_mask)["ETag"]
    e2 = put_raw(client, dwi, lesion_mask, etag=e1)["ETag"]
    assert e1 != e2


def test_missing_if_match_is_428_and_stale_is_412(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    first = put_nifti(client, dwi, nifti_bytes(lesion_mask, dwi.affine))
    etag = first["ETag"]
    r = put_nifti(client, dwi, nifti_bytes(lesion_mask, dwi.affine))
    assert r.status_code == 428
    assert set(r.json()) == {"message", "extra"}
    second = put_nifti(client, dwi, nifti_bytes(lesion_mask, dwi.affine), etag=etag)
    assert second.status_code == 200
    other = lesion_mask.copy()
    other[:] = 0
    stale = put_nifti(client, dwi, nifti_bytes(other, dwi.affine), etag=etag)
    assert stale.status_code == 412
    assert stale.json()["extra"]["current_etag"] == second["ETag"]
    # Nothing overwritten: the stored mask is still the second save.
    annotation = Annotation.objects.get(series=dwi, annotator=neurologist)
    assert annotation.revision_count == 2
    np.testing.assert_array_equal(mask_array(revision=annotation.current_revision), lesion_mask)


@pytest.mark.parametrize(
    "make_body, fragment",
    [
        (lambda m, a: nifti_bytes(m[:, :, :-1], a), "shape"),
        (lambda m, a: nifti_bytes(np.where(m > 0, 77, 0).astype(np.uint8), a), "label"),
        (lambda m, a: b"this is not a nifti file at all" * 20, "NIfTI"),
        (lambda m, a: nifti_bytes(m[..., None].repeat(2, axis=3), a), "3-D"),
        (lambda m, a: nifti_bytes(m.astype(np.float32) * 0.5, a), "whole"),
        (lambda m, a: nifti_bytes(m.astype(np.int16) * -1, a), "label"),
    ],
    ids=["wrong-shape", "unknown-label", "not-nifti", "4d", "float-fractions", "negative"],
)
def test_bad_nifti_is_400_and_stores_nothing(
    api_client_for, neurologist, dwi, lesion_mask, make_body, fragment
):
    client = api_client_for(neurologist)
    r = put_nifti(client, dwi, make_body(lesion_mask, dwi.affine))
    assert r.status_code == 400, r.content
    body = r.json()
    assert set(body) == {"message", "extra"}
    assert fragment.lower() in body["message"].lower()
    assert not AnnotationRevision.objects.exists()


def test_float_labels_with_whole_values_are_accepted(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    r = put_nifti(client, dwi, nifti_bytes(lesion_mask.astype(np.float32), dwi.affine))
    assert r.status_code == 200
    assert r.json()["revision"]["label_counts"] == {"1": 30, "2": 100}


def test_flipped_orientation_is_refused(api_client_for, neurologist, dwi, lesion_mask):
    affine = np.asarray(dwi.affine, dtype=float).copy()
    # The x axis flipped about the first voxel: the voxels would land on another grid (the
    # other hemisphere). A mask in another voxel order on the *same* grid is reoriented
    # (tests/cases/test_orientation_api.py).
    affine[0, :3] *= -1
    r = put_nifti(api_client_for(neurologist), dwi, nifti_bytes(lesion_mask, affine))
    assert r.status_code == 400
    assert "orientation" in r.json()["message"]


def test_raw_roundtrip_plain_and_gzip(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    r = put_raw(client, dwi, lesion_mask, gz=True)
    assert r.status_code == 200, r.content
    got = client.get(f"/api/series/{dwi.pk}/mask.raw")
    assert got["X-Shape"] == ",".join(str(n) for n in dwi.shape)
    assert got["ETag"] == r["ETag"]
    np.testing.assert_array_equal(
        np.frombuffer(got.content, np.uint8).reshape(dwi.shape), lesion_mask
    )
    zipped = client.get(f"/api/series/{dwi.pk}/mask.raw", HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.content) == lesion_mask.tobytes()


def test_raw_bad_inputs(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    short = client.put(
        f"/api/series/{dwi.pk}/mask.raw", b"\x00" * 100, content_type="application/octet-stream"
    )
    assert short.status_code == 400 and "shape" in short.json()["message"]
    bad = lesion_mask.copy()
    bad[0, 0, 0] = 200
    r = put_raw(client, dwi, bad)
    assert r.status_code == 400 and r.json()["extra"]["values"] == [200]
    bomb = gzip.compress(b"\x00" * (lesion_mask.size * 4))
    r = client.put(
        f"/api/series/{dwi.pk}/mask.raw",
        bomb,
        content_type="application/octet-stream",
        HTTP_CONTENT_ENCODING="gzip",
    )
    assert r.status_code == 400
    assert not AnnotationRevision.objects.exists()


def test_permissions(
    api_client_for,
    neurologist,
    neurologist2,
    reviewer,
    data_manager,
    clinician,
    make_user,
    dwi,
    lesion_mask,
):
    body = nifti_bytes(lesion_mask, dwi.affine)
    # Clinicians see only their own cases: someone else's series does not exist for them.
    assert put_nifti(api_client_for(clinician), dwi, body).status_code == 404
    assert api_client_for(clinician).get(f"/api/series/{dwi.pk}/annotations/").status_code == 404
    # A clinician's own case: visible, but clinicians do not annotate.
    from cases.services.case import case_create
    from cases.services.series import series_create_from_array

    own = case_create(user=clinician, code="CL-0001")
    own_series = series_create_from_array(
        case=own,
        kind="DWI",
        array=np.zeros(dwi.shape, np.int16),
        spacing=tuple(dwi.spacing),
        affine=dwi.affine,
        series_uid="2.25.991",
    )
    r = put_nifti(api_client_for(clinician), own_series, nifti_bytes(lesion_mask, dwi.affine))
    assert r.status_code == 403
    # Reviewers and data managers read but do not draw.
    assert put_nifti(api_client_for(reviewer), dwi, body).status_code == 403
    assert put_nifti(api_client_for(data_manager), dwi, body).status_code == 403
    nobody = make_user()
    assert put_nifti(api_client_for(nobody), dwi, body).status_code == 403
    assert put_nifti(APIClientAnon(), dwi, body).status_code in (401, 403)

    first = put_nifti(api_client_for(neurologist), dwi, body)
    annotation_id = first.json()["annotation"]
    # Each annotator's mask is their own: the second neurologist starts a separate mask...
    r = put_nifti(api_client_for(neurologist2), dwi, body)
    assert r.status_code == 200 and r.json()["annotation"] != annotation_id
    # ...and cannot submit or restore the first one's.
    other = api_client_for(neurologist2)
    assert other.post(f"/api/annotations/{annotation_id}/submit/").status_code == 403
    assert other.post(f"/api/annotations/{annotation_id}/revisions/1/restore/").status_code == 403
    # Foreign annotation ids of invisible cases are 404 for clinicians.
    assert api_client_for(clinician).get(f"/api/annotations/{annotation_id}/").status_code == 404
    assert (
        api_client_for(clinician).get(f"/api/annotations/{annotation_id}/mask.raw").status_code
        == 404
    )
    assert (
        api_client_for(data_manager)
        .get(f"/api/annotations/{annotation_id}/mask.nii.gz")
        .status_code
        == 200
    )


def APIClientAnon():
    from rest_framework.test import APIClient

    return APIClient()


def test_workflow_submit_approve_return(
    api_client_for, neurologist, reviewer, make_user, dwi, lesion_mask
):
    # The phantom case is confirmed cardioembolic (2): one etiology per case.
    lesion_mask = np.where(lesion_mask > 0, 2, 0).astype(np.uint8)
    author = api_client_for(neurologist)
    saved = put_raw(author, dwi, lesion_mask).json()
    aid = saved["annotation"]
    rev = api_client_for(reviewer)

    assert rev.post(f"/api/annotations/{aid}/approve/").status_code == 409  # still a draft
    r = author.post(f"/api/annotations/{aid}/submit/")
    assert r.status_code == 200 and r.json()["state"] == "submitted"
    assert Case.objects.get(pk=dwi.case_id).status == Case.Status.IN_REVIEW
    # The author cannot review (no reviewer role, and never their own work).
    assert author.post(f"/api/annotations/{aid}/approve/").status_code == 403
    both = make_user("neurologist", "reviewer", username="both")
    own = put_raw(api_client_for(both), dwi, lesion_mask).json()["annotation"]
    api_client_for(both).post(f"/api/annotations/{own}/submit/")
    assert api_client_for(both).post(f"/api/annotations/{own}/approve/").status_code == 403

    # Returning needs a comment.
    assert (
        rev.post(f"/api/annotations/{aid}/return/", {"comment": " "}, format="json").status_code
        == 400
    )
    r = rev.post(
        f"/api/annotations/{aid}/return/", {"comment": "Include the insula."}, format="json"
    )
    assert r.status_code == 200
    assert r.json()["state"] == "returned" and r.json()["review_comment"] == "Include the insula."
    # Returned -> edit (stays returned) -> submitted again -> approved.
    etag = r.json()["etag"]
    edited = put_raw(author, dwi, lesion_mask, etag=etag)
    assert edited.json()["state"] == "returned"
    assert author.post(f"/api/annotations/{aid}/submit/").json()["state"] == "submitted"
    r = rev.post(f"/api/annotations/{aid}/approve/", {"comment": "Good."}, format="json")
    assert r.json()["state"] == "approved" and r.json()["reviewer"] == "senior"
    verbs = list(
        AuditEvent.objects.filter(target_type="annotation.annotation", target_id=str(aid))
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert verbs == [
        "annotation.revision_saved",
        "annotation.submitted",
        "annotation.returned",
        "annotation.revision_saved",
        "annotation.submitted",
        "annotation.approved",
    ]
    # Editing approved work sends it back to draft (the reviewer did not see the new voxels).
    approved_etag = r.json()["etag"]
    again = put_raw(author, dwi, lesion_mask, etag=approved_etag)
    assert again.json()["state"] == "draft"


def test_series_annotations_list_and_query_count(
    api_client_for,
    neurologist,
    neurologist2,
    reviewer,
    dwi,
    lesion_mask,
    django_assert_max_num_queries,
):
    put_raw(api_client_for(neurologist), dwi, lesion_mask)
    put_raw(api_client_for(neurologist2), dwi, lesion_mask)
    client = api_client_for(reviewer)
    client.get(f"/api/series/{dwi.pk}/annotations/")  # warm the token/role caches
    with django_assert_max_num_queries(6):
        r = client.get(f"/api/series/{dwi.pk}/annotations/")
    assert r.status_code == 200
    rows = r.json()
    assert {row["annotator"]["username"] for row in rows} == {"neuro", "neuro2"}
    assert all(row["state"] == "draft" and row["revision"]["number"] == 1 for row in rows)


def test_revisions_list_and_restore(api_client_for, neurologist, dwi, lesion_mask):
    client = api_client_for(neurologist)
    e1 = put_raw(client, dwi, lesion_mask)
    aid = e1.json()["annotation"]
    empty = np.zeros_like(lesion_mask)
    e2 = put_raw(client, dwi, empty, etag=e1["ETag"])
    revs = client.get(f"/api/annotations/{aid}/revisions/").json()
    assert [r["number"] for r in revs] == [2, 1]
    assert revs[0]["total_ml"] == 0 and revs[1]["total_ml"] > 0
    stale = client.post(f"/api/annotations/{aid}/revisions/1/restore/", HTTP_IF_MATCH=e1["ETag"])
    assert stale.status_code == 412
    r = client.post(f"/api/annotations/{aid}/revisions/1/restore/", HTTP_IF_MATCH=e2["ETag"])
    assert r.status_code == 200 and r.json()["revision"]["number"] == 3
    assert r.json()["revision"]["restored_from"] == 1
    got = client.get(f"/api/annotations/{aid}/mask.raw?revision=3")
    np.testing.assert_array_equal(
        np.frombuffer(got.content, np.uint8).reshape(dwi.shape), lesion_mask
    )
    old = client.get(f"/api/annotations/{aid}/mask.raw?revision=2")
    assert "ETag" not in old  # only the current revision carries the lock token
    assert client.post(f"/api/annotations/{aid}/revisions/9/restore/").status_code == 404


def test_case_labelling(api_client_for, neurologist, reviewer, phantom_case):
    url = f"/api/cases/{phantom_case.pk}/labelling/"
    r = api_client_for(neurologist).post(
        url, {"etiology": "lacunar", "confirmed": True, "note": "small deep lesion"}, format="json"
    )
    assert r.status_code == 200 and r.json()["etiology"] == "lacunar"
    phantom_case.refresh_from_db()
    assert phantom_case.etiology.name == "lacunar" and phantom_case.note == "small deep lesion"
    assert api_client_for(reviewer).post(url, {"note": "x"}, format="json").status_code == 403
    bad = api_client_for(neurologist).post(url, {"etiology": "nope"}, format="json")
    assert bad.status_code == 400


def test_approve_and_return_honour_if_match(
    api_client_for, neurologist, reviewer, dwi, lesion_mask
):
    lesion_mask = np.where(lesion_mask > 0, 2, 0).astype(np.uint8)
    author = api_client_for(neurologist)
    saved = put_raw(author, dwi, lesion_mask).json()
    aid, reviewed_etag = saved["annotation"], saved["etag"]
    author.post(f"/api/annotations/{aid}/submit/")
    rev = api_client_for(reviewer)
    stale = rev.post(f"/api/annotations/{aid}/approve/", HTTP_IF_MATCH='"not-the-etag"')
    assert stale.status_code == 412 and "current_etag" in stale.json()["extra"]
    stale = rev.post(
        f"/api/annotations/{aid}/return/", {"comment": "x"}, format="json", HTTP_IF_MATCH='"0"'
    )
    assert stale.status_code == 412
    assert Annotation.objects.get(pk=aid).state == "submitted"  # nothing changed
    ok = rev.post(f"/api/annotations/{aid}/approve/", HTTP_IF_MATCH=reviewed_etag)
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
