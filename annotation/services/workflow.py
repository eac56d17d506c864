"""The review flow (submit, approve, return) and the case's labelling (etiology,
confirmation) from the editor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import REVIEWER, has_role
from cases.models import Case
from cases.services.audit import audit_record
from cases.services.case import case_update
from strokeaid_site.errors import (
    ApplicationError,
    ConflictError,
    ForbiddenError,
    PreconditionFailedError,
)

from ..models import Annotation
from .status import State, case_status_refresh
from .validation import etag_matches, require_annotator, require_etiology_consistent, require_own


def _transition(
    *,
    user: User,
    annotation: Annotation,
    allowed_from: tuple[str, ...],
    to: str,
    fields: dict[str, Any],
    verb: str,
    data: dict[str, Any] | None = None,
    check: Callable[[Annotation], None] | None = None,
    if_match: str | None = None,
) -> Annotation:
    with transaction.atomic():
        locked = (
            Annotation.objects.select_for_update(of=("self",))
            .select_related("series__case__etiology", "current_revision")
            .get(pk=annotation.pk)
        )
        if locked.state not in allowed_from:
            raise ConflictError(
                _("This annotation cannot move from its current state."),
                {"state": locked.state, "to": to},
            )
        # A reviewer decides on the revision they looked at: a newer one is a 412.
        if if_match and not etag_matches(if_match, locked):
            raise PreconditionFailedError(
                _("The mask changed since you loaded it: review the current revision."),
                {"current_etag": locked.etag, "revision": locked.revision_count},
            )
        if check is not None:
            check(locked)
        old = locked.state
        locked.state = to
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=["state", *fields, "updated_at"])
        audit_record(
            actor=user,
            verb=verb,
            target=locked,
            case=locked.series.case,
            data={"from": old, "to": to, "revision": locked.revision_count, **(data or {})},
        )
        case_status_refresh(user=user, case=locked.series.case)
    return locked


def _check_labels_for_submit(annotation: Annotation) -> None:
    revision = annotation.current_revision
    require_etiology_consistent(
        case=annotation.series.case,
        label_counts=revision.label_counts if revision else {},
        action="submit",
    )


def _check_labels_for_approve(annotation: Annotation) -> None:
    revision = annotation.current_revision
    require_etiology_consistent(
        case=annotation.series.case,
        label_counts=revision.label_counts if revision else {},
        action="approve",
    )


def annotation_submit(*, user: User, annotation: Annotation) -> Annotation:
    """Sends the caller's draft (or returned) mask to review. An empty history cannot go.

    On a confirmed case every lesion must carry the case's etiology (400 otherwise). The
    previous review's comment is cleared: it spoke of another revision (the audit trail keeps
    it), and showing it beside the new submission reads as a verdict on it.
    """
    require_own(user=user, annotation=annotation)
    if not annotation.revision_count:
        raise ConflictError(_("Save a mask before submitting it."), {})
    return _transition(
        user=user,
        annotation=annotation,
        allowed_from=(State.DRAFT, State.RETURNED),
        to=State.SUBMITTED,
        fields={"submitted_at": timezone.now(), "review_comment": ""},
        verb="annotation.submitted",
        check=_check_labels_for_submit,
    )


#: Longest review comment (characters).
COMMENT_MAX_LENGTH = 5000


def _comment_validate(comment: str) -> None:
    if len(comment) > COMMENT_MAX_LENGTH:
        raise ApplicationError(
            _("The comment is too long (at most %(limit)d characters).")
            % {"limit": COMMENT_MAX_LENGTH},
            {"field": "comment", "limit": COMMENT_MAX_LENGTH, "length": len(comment)},
        )


def _require_reviewer(*, user: User, annotation: Annotation) -> None:
    if not has_role(user, REVIEWER):
        raise ForbiddenError(_("Only reviewers approve or return annotations."), {})
    # Four eyes: nobody reviews their own drawing.
    if annotation.annotator_id is not None and annotation.annotator_id == user.pk:
        raise ForbiddenError(_("You cannot review your own annotation."), {})


def annotation_approve(
    *, user: User, annotation: Annotation, comment: str = "", if_match: str | None = None
) -> Annotation:
    """Approves a submitted annotation (its current revision becomes training data once the
    case is confirmed). On a confirmed case a mask with labels other than the case's etiology
    is refused (400): it would teach the model a contradiction. ``if_match``: the ETag of the
    revision the reviewer looked at (stale: 412)."""
    _require_reviewer(user=user, annotation=annotation)
    _comment_validate(comment)
    return _transition(
        user=user,
        annotation=annotation,
        allowed_from=(State.SUBMITTED,),
        to=State.APPROVED,
        fields={"reviewer": user, "reviewed_at": timezone.now(), "review_comment": comment},
        verb="annotation.approved",
        data={"comment": comment} if comment else None,
        check=_check_labels_for_approve,
        if_match=if_match,
    )


def annotation_return(
    *, user: User, annotation: Annotation, comment: str, if_match: str | None = None
) -> Annotation:
    """Returns a submitted annotation to its annotator with a comment saying what to fix
    (``if_match`` as for approval)."""
    _require_reviewer(user=user, annotation=annotation)
    if not comment.strip():
        raise ApplicationError(
            _("Say what should change when returning work."), {"field": "comment"}
        )
    _comment_validate(comment)
    return _transition(
        user=user,
        annotation=annotation,
        allowed_from=(State.SUBMITTED,),
        to=State.RETURNED,
        fields={"reviewer": user, "reviewed_at": timezone.now(), "review_comment": comment},
        verb="annotation.returned",
        data={"comment": comment},
        if_match=if_match,
    )


def case_labelling_update(*, user: User, case: Case, data: dict[str, Any]) -> Case:
    """Sets a case's etiology, confirmed flag and note from the editor (neurologists only)."""
    require_annotator(user)
    allowed = {k: v for k, v in data.items() if k in {"etiology", "confirmed", "note"}}
    return case_update(user=user, case=case, data=allowed)
