"""Case pages: list with filters and pagination, "New case", detail with thumbnails, per role."""

from __future__ import annotations

import pytest

from cases.models import Case
from cases.panels import _panels, register_case_panel
from strokeaid_site.navigation import _items, register_nav_item
from tests.factories import CaseFactory, label

pytestmark = pytest.mark.django_db

ROLES = ["neurologist", "reviewer", "data_manager", "clinician"]


@pytest.mark.parametrize("role", ROLES)
def test_list_renders_for_each_role(client, request, role, neurologist) -> None:
    user = request.getfixturevalue(role)
    CaseFactory(code="SA-0001", created_by=neurologist, etiology=label("cardioembolic"))
    own = CaseFactory(code="SA-0002", created_by=user)
    client.force_login(user)
    for url in ("/", "/cases/"):
        response = client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assert "SA-0002" in html and f"/cases/{own.pk}/" in html
        assert ("SA-0001" in html) is (role != "clinician")
        assert ('id="new-case"' in html) is (role != "reviewer")
    if role != "clinician":
        assert "#1e88e5" in client.get("/cases/").content.decode()  # etiology swatch


def test_list_filters_and_pagination(client, neurologist) -> None:
    for i in range(30):
        CaseFactory(
            code=f"SA-{i:04d}",
            created_by=neurologist,
            etiology=label("lacunar") if i < 3 else None,
            confirmed=i < 2,
        )
    client.force_login(neurologist)
    html = client.get("/cases/?etiology=lacunar&confirmed=true").content.decode()
    assert "SA-0000" in html and "SA-0001" in html and "SA-0002" not in html
    html = client.get("/cases/?q=SA-001").content.decode()
    assert "SA-0010" in html and "SA-0020" not in html
    first = client.get("/cases/").content.decode()
    assert "page=2" in first
    second = client.get("/cases/?page=2").content.decode()
    assert "SA-0000" in second and "SA-0029" not in second


def test_list_query_count(client, neurologist, django_assert_max_num_queries) -> None:
    for i in range(20):
        CaseFactory(code=f"SA-{i:04d}", created_by=neurologist, etiology=label("other"))
    client.force_login(neurologist)
    client.get("/cases/")
    # session, user, roles, labels for the two forms, count, page: not one per case
    with django_assert_max_num_queries(9):
        assert client.get("/cases/").status_code == 200


def test_anonymous_is_sent_to_login(client) -> None:
    response = client.get("/cases/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_create_case_from_the_page(client, clinician) -> None:
    client.force_login(clinician)
    response = client.post(
        "/cases/new/", {"code": "CL-0001", "etiology": "lacunar", "confirmed": "on"}
    )
    case = Case.objects.get(code="CL-0001")
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.pk}/"
    assert case.created_by == clinician and case.etiology.name == "lacunar" and case.confirmed
    response = client.post("/cases/new/", {"code": "Ivan Ivanov"})
    assert response.status_code == 400
    assert "pseudonym" in response.content.decode()
    assert not Case.objects.filter(code="Ivan Ivanov").exists()


def test_reviewer_may_not_create_from_the_page(client, reviewer) -> None:
    client.force_login(reviewer)
    assert client.post("/cases/new/", {"code": "SA-0001"}).status_code == 403
    assert not Case.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_detail_renders_for_each_role(client, request, role, phantom_case) -> None:
    user = request.getfixturevalue(role)
    client.force_login(user)
    response = client.get(f"/cases/{phantom_case.pk}/")
    if role == "clinician":  # not the creator
        assert response.status_code == 404
        return
    assert response.status_code == 200
    html = response.content.decode()
    assert "PH-0007" in html and "#1e88e5" in html
    dwi = phantom_case.series.get(kind="DWI")
    thumb = f"/api/series/{dwi.pk}/slices/4.png?size=160"
    assert thumb in html and 'loading="lazy"' in html
    assert html.count("<img ") == 3
    assert f"/annotation/cases/{phantom_case.pk}/" in html
    assert ('id="case-edit"' in html) is (role != "reviewer")
    assert ('id="upload-link"' in html) is (role != "reviewer")
    # the thumbnail the page links to is served to the same session
    assert client.get(thumb).status_code == 200


def test_update_from_the_page(client, neurologist, reviewer, phantom_case) -> None:
    client.force_login(neurologist)
    data = {
        "code": "PH-0007",
        "etiology": "atherothrombotic",
        "confirmed": "on",
        "note": "Holter clean",
        "status": "approved",  # not a field of the form: ignored
    }
    before = phantom_case.status
    response = client.post(f"/cases/{phantom_case.pk}/edit/", data)
    assert response.status_code == 302
    phantom_case.refresh_from_db()
    assert phantom_case.etiology.name == "atherothrombotic"
    assert phantom_case.status == before
    response = client.post(f"/cases/{phantom_case.pk}/edit/", {**data, "etiology": ""})
    assert response.status_code == 400  # confirmed without an etiology
    client.force_login(reviewer)
    assert client.post(f"/cases/{phantom_case.pk}/edit/", data).status_code == 403


def test_panels_and_nav_items_from_other_apps(client, neurologist, phantom_case) -> None:
    saved_panels, saved_items = dict(_panels), dict(_items)
    try:
        register_case_panel(
            "cases/list.html",  # any template: here one that renders without extra context
            lambda request, case: None,  # hidden
        )
        register_nav_item("Cases again", "cases:list", roles={"data_manager"})
        register_nav_item("Everyone", "cases:home")
        register_nav_item("Dangling", "nowhere:page")
        client.force_login(neurologist)
        html = client.get(f"/cases/{phantom_case.pk}/").content.decode()
        assert "Everyone" in html
        assert "Cases again" not in html and "Dangling" not in html
        assert 'id="case-table"' not in html  # the hidden panel
    finally:
        _panels.clear()
        _panels.update(saved_panels)
        _items.clear()
        _items.update(saved_items)


def test_admin_add_case_goes_through_the_service(client, make_user) -> None:
    from cases.models import AuditEvent, Case
    from tests.factories import label

    root = make_user(username="root", is_superuser=True, is_staff=True)
    client.force_login(root)
    etiology = label("lacunar")
    response = client.post(
        "/admin/cases/case/add/",
        {
            "code": "AD-0001",
            "etiology": etiology.pk,
            "confirmed": "on",
            "note": "",
            "series-TOTAL_FORMS": "0",
            "series-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    case = Case.objects.get(code="AD-0001")
    assert case.created_by == root
    assert AuditEvent.objects.filter(verb="case.created", target_id=str(case.pk)).exists()
    # A name as a code is refused on the form, not with a server error.
    refused = client.post(
        "/admin/cases/case/add/",
        {"code": "Ivanov", "note": "", "series-TOTAL_FORMS": "0", "series-INITIAL_FORMS": "0"},
    )
    assert refused.status_code == 200 and b"pseudonym" in refused.content
    assert not Case.objects.filter(code="Ivanov").exists()
