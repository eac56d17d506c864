"""``manage.py demo_setup``: users per role, phantom cases through DICOM ingestion, idempotent."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from accounts.roles import user_roles
from cases.models import Case, Series

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_setup", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_demo_setup_is_idempotent(monkeypatch) -> None:
    monkeypatch.setenv("STROKEAID_DEMO_PASSWORD", "s3cret-demo-pass")
    output = _run("--cases", "2", "--shape", "8", "64", "64", "--no-model")
    User = get_user_model()
    assert "s3cret-demo-pass" in output and "curator" in output
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="neuro").check_password("s3cret-demo-pass")
    assert user_roles(User.objects.get(username="curator")) == {"data_manager"}
    assert user_roles(User.objects.get(username="clinician")) == {"clinician"}
    assert sorted(Case.objects.values_list("code", flat=True)) == ["DEMO-0001", "DEMO-0002"]
    series = Series.objects.filter(case__code="DEMO-0001")
    assert sorted(s.kind for s in series) == ["ADC", "DWI", "FLAIR"]
    assert all(s.shape == [8, 64, 64] for s in series)
    case = Case.objects.get(code="DEMO-0001")
    assert case.confirmed and case.etiology is not None
    counts = (User.objects.count(), Case.objects.count(), Series.objects.count())

    output = _run("--cases", "2", "--shape", "8", "64", "64", "--no-model")
    assert "all present" in output
    assert (User.objects.count(), Case.objects.count(), Series.objects.count()) == counts


def test_demo_setup_loads_ground_truth_as_approved_annotations() -> None:
    # demo_setup calls annotation.services.annotation_import_mask: a rename must fail here.
    from annotation.models import Annotation

    _run("--cases", "1", "--shape", "8", "64", "64", "--no-model")
    annotation = Annotation.objects.get(series__case__code="DEMO-0001")
    assert annotation.series.kind == "DWI"
    assert annotation.state == "approved"
