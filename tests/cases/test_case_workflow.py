"""Case workflow and display: the status follows the workflow (archive/unarchive only), series
in clinical order, the DWI default window, the API's JSON 404 and filter validation."""

from __future__ import annotations

import numpy as np
import pytest

from cases.models import AuditEvent, Case, Series
from cases.phantoms import generate_case
from cases.services.series import default_window, series_create_from_array
from tests.factories import CaseFactory

pytestmark = pytest.mark.django_db


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "extra"} and body["message"]
    return body


@pytest.mark.parametrize("target", ["approved", "in_review", "annotating", "imaged", "new"])
def test_patch_cannot_set_a_workflow_status(api_client_for, clinician, target) -> None:
    case = CaseFactory(code="SA-0101", created_by=clinician, status="imaged")
    if target == "imaged":
        return  # unchanged value: accepted (see test below)
    body = _error(
        api_client_for(clinician).patch(f"/api/cases/{case.pk}/", {"status": target}, "json"), 400
    )
    assert body["extra"]["field"] == "status"
    case.refresh_from_db()
    assert case.status == "imaged"


def test_unchanged_status_is_accepted(api_client_for, neurologist) -> None:
    case = CaseFactory(code="SA-0102", created_by=neurologist, status="imaged")
    response = api_client_for(neurologist).patch(
        f"/api/cases/{case.pk}/", {"status": "imaged", "note": "x"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "imaged"


def test_archive_and_unarchive_recomputes(api_client_for, neurologist, data_manager, clinician):
    case = CaseFactory(code="SA-0103", created_by=clinician, status="new")
    series_create_from_array(
        case=case,
        kind="DWI",
        array=np.ones((2, 4, 4), np.int16),
        spacing=(5.0, 1.0, 1.0),
        series_uid="1.2.3.103",
    )
    url = f"/api/cases/{case.pk}/"
    # clinicians may edit their own case but not archive it
    _error(api_client_for(clinician).patch(url, {"archived": True}, format="json"), 403)
    body = api_client_for(neurologist).patch(url, {"status": "archived"}, format="json").json()
    assert body["status"] == "archived"
    # the workflow does not move an archived case
    series_create_from_array(
        case=case,
        kind="ADC",
        array=np.ones((2, 4, 4), np.int16),
        spacing=(5.0, 1.0, 1.0),
        series_uid="1.2.3.104",
    )
    case.refresh_from_db()
    assert case.status == "archived"
    # unarchive: recomputed from the data (a series, no annotation -> imaged)
    body = api_client_for(data_manager).patch(url, {"archived": False}, format="json").json()
    assert body["status"] == "imaged"
    changes = [e.data.get("status") for e in AuditEvent.objects.filter(verb="case.updated")]
    assert ["imaged", "archived"] in changes and ["archived", "imaged"] in changes


def test_archive_from_the_page(client, neurologist, clinician, phantom_case) -> None:
    client.force_login(neurologist)
    html = client.get(f"/cases/{phantom_case.pk}/").content.decode()
    assert 'id="case-archive"' in html and 'name="status"' not in html
    response = client.post(f"/cases/{phantom_case.pk}/archive/", {"archived": "1"})
    assert response.status_code == 302
    phantom_case.refresh_from_db()
    assert phantom_case.status == "archived"
    client.post(f"/cases/{phantom_case.pk}/archive/", {"archived": "0"})
    phantom_case.refresh_from_db()
    assert phantom_case.status == "imaged"
    own = CaseFactory(code="SA-0104", created_by=clinician)
    client.force_login(clinician)
    assert 'id="case-archive"' not in client.get(f"/cases/{own.pk}/").content.decode()
    assert client.post(f"/cases/{own.pk}/archive/", {"archived": "1"}).status_code == 403


def test_series_in_clinical_order(api_client_for, client, neurologist) -> None:
    case = CaseFactory(code="SA-0105", created_by=neurologist)
    for i, kind in enumerate(["OTHER", "FLAIR", "ADC", "CT", "DWI"]):
        series_create_from_array(
            case=case,
            kind=kind,
            array=np.ones((2, 4, 4), np.int16),
            spacing=(5.0, 1.0, 1.0),
            series_uid=f"1.2.3.2{i}",
        )
    kinds = [
        s["kind"] for s in api_client_for(neurologist).get(f"/api/cases/{case.pk}/series/").json()
    ]
    assert kinds == list(Series.KIND_ORDER) == ["DWI", "ADC", "FLAIR", "CT", "OTHER"]
    client.force_login(neurologist)
    html = client.get(f"/cases/{case.pk}/").content.decode()
    positions = [html.index(f"<strong>{kind}</strong>") for kind in Series.KIND_ORDER]
    assert positions == sorted(positions)


def test_dwi_default_window_shows_lesions() -> None:
    """On a phantom, DWI normal brain sits near mid-grey and lesions stay below white."""
    phantom = generate_case(etiology="lacunar", seed=5, shape=(16, 128, 128))
    dwi, lesion = phantom.images["DWI"], phantom.mask > 0
    assert lesion.any()
    centre, width = default_window(dwi, "DWI")
    lo, hi = centre - width / 2, centre + width / 2
    brain = dwi[(dwi > dwi.mean()) & ~lesion]
    assert float(dwi[lesion].mean()) < hi
    assert (np.percentile(brain, 90) - lo) / (hi - lo) < 0.6
    # the generic window (other kinds) clips these lesions: the reason for the DWI rule
    c2, w2 = default_window(dwi)
    assert float(dwi[lesion].mean()) > c2 + w2 / 2


def test_unknown_api_route_is_json(api_client_for, neurologist, client) -> None:
    body = _error(api_client_for(neurologist).get("/api/no-such-thing/"), 404)
    assert body["extra"]["path"] == "/api/no-such-thing/"
    client.force_login(neurologist)
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_unknown_filters_are_400(api_client_for, neurologist) -> None:
    api = api_client_for(neurologist)
    CaseFactory(code="SA-0106", created_by=neurologist, etiology=None)
    body = _error(api.get("/api/cases/?etiology=bogus"), 400)
    assert "etiology" in body["extra"]["fields"]
    _error(api.get("/api/cases/?status=bogus"), 400)
    assert api.get("/api/cases/?etiology=none").json()["count"] == 1
    assert api.get("/api/cases/?etiology=lacunar").status_code == 200


def test_favicon_linked(client, neurologist) -> None:
    client.force_login(neurologist)
    assert 'rel="icon"' in client.get("/cases/").content.decode()
    assert Case.objects.count() == 0
