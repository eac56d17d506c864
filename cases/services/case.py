"""Case writes: create, update, delete."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Case, Label
from strokeaid_site.errors import ApplicationError

from .audit import audit_record

# A pseudonymous code: letters, digits and separators, and at least one digit. Anything that
# reads like a personal name ("Ivanov Ivan", "DOE^JANE") is refused: codes must never identify.
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")


def case_code_validate(code: str) -> str:
    code = code.strip()
    if not _CODE_RE.match(code) or not any(ch.isdigit() for ch in code):
        raise ApplicationError(
            _(
                "A case code must be a pseudonym: 2-64 letters, digits, '.', '_' or '-', "
                "with at least one digit, and never a name."
            ),
            {"field": "code", "code": code},
        )
    return code


def label_resolve(name: str | None) -> Label | None:
    """The active label set's label named ``name`` (None stays None)."""
    if name in (None, ""):
        return None
    label = Label.objects.filter(label_set__is_active=True, name=name).first()
    if label is None:
        raise ApplicationError(
            _("Unknown etiology label."), {"field": "etiology", "etiology": name}
        )
    return label


@transaction.atomic
def case_create(
    *,
    user: User,
    code: str,
    etiology: str | None = None,
    confirmed: bool = False,
    note: str = "",
) -> Case:
    """Creates a case. ``etiology`` is a label name of the active set (or None)."""
    code = case_code_validate(code)
    if Case.objects.filter(code=code).exists():
        raise ApplicationError(_("A case with this code exists."), {"field": "code", "code": code})
    label = label_resolve(etiology)
    if confirmed and label is None:
        raise ApplicationError(_("A confirmed case needs an etiology."), {"field": "confirmed"})
    case = Case.objects.create(
        code=code, etiology=label, confirmed=confirmed, note=note, created_by=user
    )
    audit_record(actor=user, verb="case.created", target=case, case=case, data={"code": code})
    return case


@transaction.atomic
def case_update(*, user: User, case: Case, data: dict[str, Any]) -> Case:
    """Updates code, etiology (label name), confirmed, note and status of ``case``."""
    case = Case.objects.select_for_update().get(pk=case.pk)
    changes: dict[str, Any] = {}
    if "code" in data and data["code"] != case.code:
        code = case_code_validate(data["code"])
        if Case.objects.filter(code=code).exclude(pk=case.pk).exists():
            raise ApplicationError(_("A case with this code exists."), {"field": "code"})
        changes["code"] = [case.code, code]
        case.code = code
    if "etiology" in data:
        label = label_resolve(data["etiology"])
        old = case.etiology.name if case.etiology else None
        if (label.name if label else None) != old:
            changes["etiology"] = [old, label.name if label else None]
        case.etiology = label
    if "confirmed" in data and bool(data["confirmed"]) != case.confirmed:
        changes["confirmed"] = [case.confirmed, bool(data["confirmed"])]
        case.confirmed = bool(data["confirmed"])
    if "note" in data:
        case.note = data["note"]
    if "status" in data and data["status"] != case.status:
        if data["status"] not in Case.Status.values:
            raise ApplicationError(_("Unknown status."), {"field": "status"})
        changes["status"] = [case.status, data["status"]]
        case.status = data["status"]
    if case.confirmed and case.etiology is None:
        raise ApplicationError(_("A confirmed case needs an etiology."), {"field": "confirmed"})
    case.save()
    if changes:
        audit_record(actor=user, verb="case.updated", target=case, case=case, data=changes)
    return case


def case_delete(*, user: User, case: Case) -> None:
    """Deletes a case with its images and masks (rows first, then the stored files)."""
    keys = list(case.series.values_list("volume__key", flat=True))
    series_ids = list(case.series.values_list("id", flat=True))
    with transaction.atomic():
        audit_record(actor=user, verb="case.deleted", target=case, data={"code": case.code})
        case.delete()

    def _cleanup() -> None:
        for key in keys:
            if key:
                storage.delete(key)
        for series_id in series_ids:
            storage.delete_prefix(f"masks/{series_id}")

    transaction.on_commit(_cleanup)
