"""Writes of the etiology app: the work-up (audited, all-or-nothing)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from cases.models import Case
from cases.selectors import case_can_write
from cases.services.audit import audit_record
from etiology.models import Workup
from etiology.reasoning.workup import FIELD_NAMES, validate_workup
from etiology.selectors import workup_for_case
from strokeaid_site.errors import ApplicationError, ForbiddenError


def workup_replace(*, user: User, case: Case, data: Any) -> dict[str, Any]:
    """Replaces the case's work-up with ``data`` (missing keys = unknown) and audits the
    change. Neurologists, data managers and the case's own clinician may.

    Raises:
        ForbiddenError: the user may not change this case.
        ApplicationError: unknown keys or wrong types (400); nothing is stored.
    """
    if not case_can_write(user=user, case=case):
        raise ForbiddenError(_("You may not change this case."), {"case": case.pk})
    clean, errors = validate_workup(data)
    if errors:
        raise ApplicationError(
            _("Invalid work-up: %(fields)s.") % {"fields": ", ".join(sorted(errors))},
            {"errors": {k: _(v) for k, v in errors.items()}},
        )
    with transaction.atomic():
        before = workup_for_case(case=case)
        Workup.objects.update_or_create(case=case, defaults={**clean, "updated_by": user})
        changed = {k: [before[k], clean[k]] for k in FIELD_NAMES if before[k] != clean[k]}
        if changed:
            audit_record(actor=user, verb="workup.updated", target=case, case=case, data=changed)
    return clean
