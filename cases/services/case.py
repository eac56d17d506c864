"""Case writes: create, update, archive, delete, and the workflow status moves.

``Case.status`` follows the workflow and is never set by hand: ingestion moves a case to
``imaged`` and the annotation services to ``annotating`` / ``in_review`` / ``approved``
(through ``case_status_set``). People may only archive a case and unarchive it
(neurologists and data managers). Unarchiving *recomputes* the status (``case_status_derive``)
rather than restoring the one from before archiving: annotations may have been edited,
submitted or reviewed while the case was archived, and a restored status could then claim a
review that no longer holds.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, NEUROLOGIST, has_role
from cases import storage
from cases.models import Case, Label
from strokeaid_site.errors import ApplicationError, ForbiddenError

from .audit import audit_record

# A pseudonymous code: letters, digits and separators, and at least one digit. Anything that
# reads like a personal name ("Ivanov Ivan", "DOE^JANE") is refused: codes must never identify.
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")


#: Longest case note (characters): a clinical note, not a document store.
NOTE_MAX_LENGTH = 20000


def case_note_validate(note: str) -> str:
    if len(note) > NOTE_MAX_LENGTH:
        raise ApplicationError(
            _("The note is too long (at most %(limit)d characters).") % {"limit": NOTE_MAX_LENGTH},
            {"field": "note", "limit": NOTE_MAX_LENGTH, "length": len(note)},
        )
    return note


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
    origin: dict[str, Any] | None = None,
) -> Case:
    """Creates a case. ``etiology`` is a label name of the active set (or None); ``origin``
    says where the request came from when not the web or plain REST (e.g. the Telegram bot
    acting for a linked account) and is kept in the audit trail."""
    code = case_code_validate(code)
    note = case_note_validate(note)
    if Case.objects.filter(code=code).exists():
        raise ApplicationError(_("A case with this code exists."), {"field": "code", "code": code})
    label = label_resolve(etiology)
    if confirmed and label is None:
        raise ApplicationError(_("A confirmed case needs an etiology."), {"field": "confirmed"})
    case = Case.objects.create(
        code=code, etiology=label, confirmed=confirmed, note=note, created_by=user
    )
    data: dict[str, Any] = {"code": code}
    if origin:
        data["origin"] = origin
    audit_record(actor=user, verb="case.created", target=case, case=case, data=data)
    return case


#: Who may archive and unarchive a case (superusers hold every role).
ARCHIVE_ROLES = (NEUROLOGIST, DATA_MANAGER)

# Status deriver: the annotation app registers one (``AppConfig.ready``) that reads its
# annotations' states; the cases app must not import it (the foundation never imports upward).
StatusDeriver = Callable[[Case], str | None]
_status_derivers: list[StatusDeriver] = []


def register_case_status_deriver(deriver: StatusDeriver) -> None:
    """Adds ``deriver(case) -> status | None``; the first non-None answer wins."""
    if deriver not in _status_derivers:
        _status_derivers.append(deriver)


# Stored-file collectors: apps that keep files about a case (predictions) register one, so a
# deleted case leaves no orphan files behind without the cases app importing them.
FilePrefixes = Callable[[Case], list[str]]
_file_collectors: list[FilePrefixes] = []


def register_case_file_prefixes(collector: FilePrefixes) -> None:
    """Adds ``collector(case) -> storage prefixes`` deleted with the case."""
    if collector not in _file_collectors:
        _file_collectors.append(collector)


def case_status_derive(case: Case) -> str:
    """The workflow status ``case`` has from its data, ignoring archiving.

    The annotations decide when there are any (registered derivers); otherwise a case with
    series is ``imaged`` and one without is ``new``.
    """
    for deriver in _status_derivers:
        status = deriver(case)
        if status:
            return status
    return Case.Status.IMAGED if case.series.exists() else Case.Status.NEW


def case_can_archive(*, user: Any) -> bool:
    return has_role(user, *ARCHIVE_ROLES)


def case_status_set(*, user: User | None, case: Case, status: str, reason: str) -> None:
    """Moves ``case`` to ``status`` for a workflow step (ingestion, annotation, review).

    Only services call this; people archive/unarchive through ``case_update``. An archived
    case stays archived: work may go on, but the case is out of the lists until unarchived.
    """
    if status not in Case.Status.values:
        raise ApplicationError(_("Unknown status."), {"field": "status", "status": status})
    current = Case.objects.filter(pk=case.pk).values_list("status", flat=True).first()
    if current is None or current == status or current == Case.Status.ARCHIVED:
        return
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(status=status, updated_at=now)
    case.status = status
    case.updated_at = now
    audit_record(
        actor=user,
        verb="case.updated",
        target=case,
        case=case,
        data={"status": [current, status], "reason": reason},
    )


def case_touch(*, case: Case) -> None:
    """Marks ``case`` updated now: its annotations changed state (the lists sort by it)."""
    now = timezone.now()
    Case.objects.filter(pk=case.pk).update(updated_at=now)
    case.updated_at = now


def _status_change(*, user: User, case: Case, data: dict[str, Any]) -> str | None:
    """The status a user's update asks for: archiving, unarchiving, or nothing.

    ``archived`` (bool) archives or unarchives; ``status`` is accepted only when unchanged
    (clients send the whole object back) or ``"archived"``. Any other status is the workflow's
    to set, never a person's: approving a case by hand would bypass the review.
    """
    target: str | None = None
    if "status" in data and data["status"] != case.status:
        if data["status"] not in Case.Status.values:
            raise ApplicationError(_("Unknown status."), {"field": "status"})
        if data["status"] != Case.Status.ARCHIVED:
            raise ApplicationError(
                _(
                    "The status follows the workflow (upload, annotation, review) and cannot "
                    "be set by hand; you may only archive or unarchive a case."
                ),
                {"field": "status", "status": data["status"], "allowed": ["archived"]},
            )
        target = Case.Status.ARCHIVED
    if "archived" in data and data["archived"] is not None:
        archived = bool(data["archived"])
        if target is not None and not archived:
            raise ApplicationError(
                _("Contradictory request: archived is false but status is archived."),
                {"field": "archived"},
            )
        if archived and case.status != Case.Status.ARCHIVED:
            target = Case.Status.ARCHIVED
        elif not archived and case.status == Case.Status.ARCHIVED:
            target = case_status_derive(case)
    if target is not None and not case_can_archive(user=user):
        raise ForbiddenError(
            _("Only neurologists and data managers archive or unarchive cases."),
            {"field": "status"},
        )
    return target


@transaction.atomic
def case_update(*, user: User, case: Case, data: dict[str, Any]) -> Case:
    """Updates code, etiology (label name), confirmed and note of ``case``; archives it
    (``archived: true`` or ``status: "archived"``) or unarchives it (``archived: false``:
    the status is recomputed from its annotations and series, see the module docstring)."""
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
        case.note = case_note_validate(str(data["note"]))
    status = _status_change(user=user, case=case, data=data)
    if status is not None and status != case.status:
        changes["status"] = [case.status, status]
        case.status = status
    if case.confirmed and case.etiology is None:
        raise ApplicationError(_("A confirmed case needs an etiology."), {"field": "confirmed"})
    case.save()
    if changes:
        audit_record(actor=user, verb="case.updated", target=case, case=case, data=changes)
    return case


def case_delete(*, user: User, case: Case) -> None:
    """Deletes a case with its images, masks and every other app's files about it (rows first,
    then the stored files, after commit)."""
    keys = list(case.series.values_list("volume__key", flat=True))
    series_ids = list(case.series.values_list("id", flat=True))
    prefixes = [prefix for collect in _file_collectors for prefix in collect(case)]
    with transaction.atomic():
        audit_record(actor=user, verb="case.deleted", target=case, data={"code": case.code})
        case.delete()

    def _cleanup() -> None:
        for key in keys:
            if key:
                storage.delete(key)
        for series_id in series_ids:
            storage.delete_prefix(f"masks/{series_id}")
        for prefix in prefixes:
            storage.delete_prefix(prefix)

    transaction.on_commit(_cleanup)
