"""Selectors: the visibility and write matrix of cases and series per role."""

from __future__ import annotations

import pytest

from cases.models import Series
from cases.selectors import (
    case_can_create,
    case_can_delete,
    case_get_for_user,
    case_list_for_user,
    labels_active,
    series_get_for_user,
)
from cases.services.series import series_create_from_array
from strokeaid_site.errors import ForbiddenError, NotFoundError
from tests.factories import CaseFactory, label

pytestmark = pytest.mark.django_db


@pytest.fixture
def cases(neurologist, clinician, make_user):
    other_clinician = make_user("clinician", username="doctor2")
    return {
        "neuro": CaseFactory(code="SA-0001", created_by=neurologist),
        "own": CaseFactory(code="SA-0002", created_by=clinician),
        "foreign": CaseFactory(code="SA-0003", created_by=other_clinician),
    }


# role -> (sees, may write, may delete, may create) per case of the fixture
MATRIX = {
    "neurologist": ({"neuro", "own", "foreign"}, {"neuro", "own", "foreign"}, False, True),
    "reviewer": ({"neuro", "own", "foreign"}, set(), False, False),
    "data_manager": ({"neuro", "own", "foreign"}, {"neuro", "own", "foreign"}, True, True),
    "clinician": ({"own"}, {"own"}, False, True),
    None: (set(), set(), False, False),
}


@pytest.mark.parametrize("role", list(MATRIX))
def test_permission_matrix(role, cases, request, make_user) -> None:
    user = request.getfixturevalue(role) if role else make_user(username="norole")
    sees, writes, deletes, creates = MATRIX[role]
    visible = {name for name, case in cases.items() if case in case_list_for_user(user=user)}
    assert visible == sees
    assert case_can_create(user=user) is creates
    for name, case in cases.items():
        if name not in sees:
            with pytest.raises(NotFoundError):
                case_get_for_user(user=user, case_id=case.pk)
            continue
        assert case_get_for_user(user=user, case_id=case.pk) == case
        if name in writes:
            assert case_get_for_user(user=user, case_id=case.pk, for_write=True) == case
        else:
            with pytest.raises(ForbiddenError):
                case_get_for_user(user=user, case_id=case.pk, for_write=True)
        assert case_can_delete(user=user, case=case) is deletes


def test_superuser_sees_writes_and_deletes(cases, make_user) -> None:
    admin = make_user(username="root", is_superuser=True, is_staff=True)
    assert case_list_for_user(user=admin).count() == 3
    case = case_get_for_user(user=admin, case_id=cases["foreign"].pk, for_write=True)
    assert case_can_delete(user=admin, case=case)


def test_unknown_case_is_not_found(neurologist) -> None:
    with pytest.raises(NotFoundError) as error:
        case_get_for_user(user=neurologist, case_id=999999)
    assert error.value.status_code == 404


def test_list_filters(neurologist) -> None:
    CaseFactory(code="SA-0100", created_by=neurologist, etiology=label("lacunar"), confirmed=True)
    CaseFactory(code="SA-0101", created_by=neurologist, etiology=label("cardioembolic"))
    CaseFactory(code="XY-0102", created_by=neurologist, status="in_review")

    def codes(**filters):
        return sorted(c.code for c in case_list_for_user(user=neurologist, filters=filters))

    assert codes(etiology="lacunar") == ["SA-0100"]
    assert codes(etiology="none") == ["XY-0102"]
    assert codes(confirmed=True) == ["SA-0100"]
    assert codes(confirmed="false") == ["SA-0101", "XY-0102"]
    assert codes(status="in_review") == ["XY-0102"]
    assert codes(q="sa-01") == ["SA-0100", "SA-0101"]
    assert codes(etiology="", confirmed="", status="") == ["SA-0100", "SA-0101", "XY-0102"]
    assert case_list_for_user(user=neurologist).first().series_count == 0


def test_series_visibility_follows_the_case(cases, clinician, reviewer) -> None:
    import numpy as np

    series = {}
    for name in ("own", "foreign"):
        series[name] = series_create_from_array(
            case=cases[name],
            kind=Series.Kind.DWI,
            array=np.arange(2 * 4 * 4, dtype=np.int16).reshape(2, 4, 4),
            spacing=(5.0, 1.0, 1.0),
            series_uid=f"2.25.{cases[name].pk}",
        )
    assert series_get_for_user(user=clinician, series_id=series["own"].pk, for_write=True)
    with pytest.raises(NotFoundError):
        series_get_for_user(user=clinician, series_id=series["foreign"].pk)
    assert series_get_for_user(user=reviewer, series_id=series["foreign"].pk)
    with pytest.raises(ForbiddenError):
        series_get_for_user(user=reviewer, series_id=series["foreign"].pk, for_write=True)
    with pytest.raises(NotFoundError):
        series_get_for_user(user=reviewer, series_id=999999)


def test_labels_active_in_value_order() -> None:
    labels = list(labels_active())
    assert [lab.value for lab in labels] == [1, 2, 3, 4, 5]
    assert labels[0].name == "atherothrombotic"
