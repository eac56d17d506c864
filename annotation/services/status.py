"""The case status the annotations imply, kept in step after every write."""

from __future__ import annotations

from django.contrib.auth.models import User

from cases.models import Case
from cases.services.case import case_status_set, case_touch

from ..models import Annotation

State = Annotation.State


PRE_ANNOTATION = (Case.Status.NEW, Case.Status.IMAGED)


def case_status_from_annotations(case: Case) -> str | None:
    """The workflow status the annotations of ``case`` give it (None when it has none).

    Any submitted annotation puts the case in review; otherwise any approved one makes it
    approved; otherwise any annotation means it is being annotated. Registered with the
    cases app (``register_case_status_deriver``) so that unarchiving recomputes it too.
    """
    states = set(Annotation.objects.filter(series__case=case).values_list("state", flat=True))
    if not states:
        return None
    if State.SUBMITTED in states:
        return Case.Status.IN_REVIEW
    if State.APPROVED in states:
        return Case.Status.APPROVED
    return Case.Status.ANNOTATING


def case_status_refresh(*, user: User | None, case: Case) -> None:
    """Derives the case's workflow status from its annotations' states (archived stays) and
    marks the case updated: a mask that changed state is a change of the case."""
    case_touch(case=case)
    if case.status == Case.Status.ARCHIVED:
        return
    status = case_status_from_annotations(case)
    if status is not None:
        case_status_set(user=user, case=case, status=status, reason="annotation")
