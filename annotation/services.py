"""Writes of the annotation app: mask saves (revisions), restores, imports and the review flow.

Every function here runs inside ``storage.transactional()`` (or ``transaction.atomic``), records
its change in the audit trail and keeps ``Case.status`` in step with the annotations' states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import NEUROLOGIST, REVIEWER, has_role
from cases import storage
from cases.models import Case, Series
from cases.selectors import labels_active
from cases.services.audit import audit_record
from cases.services.case import case_status_set, case_touch, case_update
from strokeaid_site.errors import (
    ApplicationError,
    ConflictError,
    ForbiddenError,
    PreconditionFailedError,
    PreconditionRequiredError,
)

from .models import Annotation, AnnotationRevision

State = Annotation.State
_PRE_ANNOTATION = (Case.Status.NEW, Case.Status.IMAGED)


# --- decoding and validation ---------------------------------------------------------------
@dataclass(frozen=True)
class CheckedMask:
    """A validated label volume with its per-label voxel counts (background excluded)."""

    array: np.ndarray  # uint8, (z, y, x), C-contiguous
    counts: dict[int, int]


def mask_validate(*, series: Series, array: np.ndarray) -> CheckedMask:
    """Checks shape, type and label values of ``array``; returns it as uint8 with counts.

    One pass of ``np.bincount(minlength=256)`` both finds unknown values and counts voxels
    per label. Floats are accepted only when every value is a whole number (nnU-Net and many
    tools write labels as float); any other fraction is not a label.
    """
    shape = tuple(int(n) for n in series.shape)
    if array.ndim != 3:
        raise ApplicationError(_("A mask must be a 3-D volume."), {"shape": list(array.shape)})
    if tuple(array.shape) != shape:
        raise ApplicationError(
            _("The mask does not have the shape of the series."),
            {"expected": list(shape), "received": list(array.shape)},
        )
    if array.dtype != np.uint8:
        if array.dtype.kind == "f":
            if not np.isfinite(array).all() or not np.array_equal(array, np.round(array)):
                raise ApplicationError(
                    _("A mask must hold whole label values, not fractions."),
                    {"dtype": str(array.dtype)},
                )
        elif array.dtype.kind not in "biu":
            raise ApplicationError(_("Unsupported mask data type."), {"dtype": str(array.dtype)})
        lo, hi = float(array.min()), float(array.max())
        if lo < 0 or hi > 255:
            raise ApplicationError(
                _("The mask contains values that are not labels of the active label set."),
                {"values": sorted({int(lo), int(hi)} - {0})},
            )
        array = array.astype(np.uint8)
    array = np.ascontiguousarray(array)
    counts = np.bincount(array.reshape(-1), minlength=256)
    allowed = np.zeros(256, dtype=bool)
    allowed[0] = True
    allowed[list(labels_active().values_list("value", flat=True))] = True
    unknown = np.flatnonzero((counts > 0) & ~allowed)
    if unknown.size:
        raise ApplicationError(
            _("The mask contains values that are not labels of the active label set."),
            {"values": [int(v) for v in unknown]},
        )
    present = np.flatnonzero(counts[1:]) + 1
    return CheckedMask(array=array, counts={int(v): int(counts[v]) for v in present})


def voxel_volume_ml(series: Series) -> float:
    """The volume of one voxel in millilitres (spacing is in mm; 1 ml = 1000 mm³)."""
    z, y, x = (float(s) for s in series.spacing)
    return z * y * x / 1000.0


def etiology_mismatch(*, case: Case, label_counts: dict[Any, int]) -> list[int]:
    """Label values in a mask that are not the confirmed etiology of ``case`` (sorted).

    One etiology per case: once the work-up has confirmed a case's etiology, every lesion of
    the case carries that label (the model learns etiology from these masks). An unconfirmed
    case is still in work-up, so any label is allowed (empty list).
    """
    if not case.confirmed or case.etiology_id is None:
        return []
    expected = case.etiology.value if case.etiology else None
    return sorted(int(v) for v, n in label_counts.items() if n and int(v) != expected)


def _require_etiology_consistent(*, case: Case, label_counts: dict[Any, int], action: str) -> None:
    """Refuses (400) to submit or approve a mask whose labels contradict the case's confirmed
    etiology, naming the labels so the reviewer knows what to relabel."""
    wrong = etiology_mismatch(case=case, label_counts=label_counts)
    if not wrong:
        return
    labels = {label.value: label for label in labels_active()}
    expected = case.etiology
    assert expected is not None  # etiology_mismatch is empty without one
    found = ", ".join(labels[v].title if v in labels else str(v) for v in wrong)
    if action == "submit":
        message = _(
            "This mask has lesions labelled %(found)s, but the case's confirmed etiology is "
            "%(etiology)s (one etiology per case). Relabel those lesions, or correct the "
            "case's etiology, before submitting."
        )
    else:
        message = _(
            "This mask has lesions labelled %(found)s, but the case's confirmed etiology is "
            "%(etiology)s (one etiology per case). Return it for relabelling, or have the "
            "case's etiology corrected, before approving."
        )
    raise ApplicationError(
        message % {"found": found, "etiology": expected.title},
        {
            "field": "etiology",
            "etiology": expected.name,
            "mask_labels": [labels[v].name if v in labels else v for v in wrong],
        },
    )


def _etag_matches(if_match: str, annotation: Annotation) -> bool:
    current = annotation.etag
    if current is None:
        return False
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag.strip('"') == current.strip('"'):
            return True
    return False


# --- revisions -----------------------------------------------------------------------------
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


def _case_status_refresh(*, user: User | None, case: Case) -> None:
    """Derives the case's workflow status from its annotations' states (archived stays) and
    marks the case updated: a mask that changed state is a change of the case."""
    case_touch(case=case)
    if case.status == Case.Status.ARCHIVED:
        return
    status = case_status_from_annotations(case)
    if status is not None:
        case_status_set(user=user, case=case, status=status, reason="annotation")


def _annotation_for_write(
    *, series: Series, annotator: User | None, is_consensus: bool
) -> Annotation:
    """The (locked) annotation of ``annotator`` on ``series``, created when missing."""
    qs = Annotation.objects.select_for_update(of=("self",)).filter(series=series)
    qs = (
        qs.filter(is_consensus=True)
        if is_consensus
        else qs.filter(is_consensus=False, annotator=annotator)
    )
    annotation = qs.first()
    if annotation is None:
        annotation = Annotation.objects.create(
            series=series, annotator=None if is_consensus else annotator, is_consensus=is_consensus
        )
    return annotation


def _revision_add(
    *,
    user: User | None,
    annotation: Annotation,
    checked: CheckedMask,
    source: str,
    note: str = "",
    restored_from: int | None = None,
) -> AnnotationRevision:
    """Stores the array and appends a revision; the caller holds the annotation's row lock."""
    series = annotation.series
    number = annotation.revision_count + 1
    key, digest, nbytes = storage.write_array(
        storage.mask_key(series_id=series.pk, annotation_id=annotation.pk, revision=number),
        checked.array,
    )
    per_voxel = voxel_volume_ml(series)
    revision = AnnotationRevision.objects.create(
        annotation=annotation,
        number=number,
        key=key,
        sha256=digest,
        nbytes=nbytes,
        created_by=user if user is not None and user.is_authenticated else None,
        source=source,
        label_counts={str(v): n for v, n in checked.counts.items()},
        volumes_ml={str(v): round(n * per_voxel, 3) for v, n in checked.counts.items()},
        restored_from=restored_from,
        note=note,
    )
    old_state = annotation.state
    # New voxels were not what the reviewer saw: a submitted or approved mask that changes
    # goes back to draft. A returned one stays returned (with its comment) until resubmitted.
    if annotation.state in (State.SUBMITTED, State.APPROVED):
        annotation.state = State.DRAFT
    annotation.current_revision = revision
    annotation.revision_count = number
    annotation.save(update_fields=["current_revision", "revision_count", "state", "updated_at"])
    audit_record(
        actor=user,
        verb="annotation.revision_saved",
        target=annotation,
        case=series.case,
        data={
            "series": series.pk,
            "revision": number,
            "source": source,
            "label_counts": revision.label_counts,
            "volumes_ml": revision.volumes_ml,
            **({"restored_from": restored_from} if restored_from else {}),
        },
    )
    if old_state != annotation.state:
        audit_record(
            actor=user,
            verb="annotation.state_changed",
            target=annotation,
            case=series.case,
            data={"from": old_state, "to": annotation.state, "reason": "edited"},
        )
    return revision


def _require_annotator(user: User) -> None:
    if not has_role(user, NEUROLOGIST):
        raise ForbiddenError(_("Only neurologists draw lesion masks."), {})


def mask_save(
    *,
    user: User,
    series: Series,
    array: np.ndarray,
    if_match: str | None,
    source: str = AnnotationRevision.Source.EDITOR,
    note: str = "",
) -> AnnotationRevision:
    """Saves ``array`` as a new revision of the caller's own mask on ``series``.

    Optimistic locking: the first save of a mask needs no ``if_match``; every later one must
    name the current ETag (missing: 428, stale: 412 with the current ETag in ``extra``), so a
    save never silently overwrites a newer one from another tab or client.
    """
    _require_annotator(user)
    checked = mask_validate(series=series, array=array)
    with storage.transactional():
        annotation = _annotation_for_write(series=series, annotator=user, is_consensus=False)
        annotation.series = series
        if annotation.revision_count:
            if not if_match:
                raise PreconditionRequiredError(
                    _("This mask exists: send If-Match with its ETag to change it."),
                    {"current_etag": annotation.etag},
                )
            if not _etag_matches(if_match, annotation):
                raise PreconditionFailedError(
                    _("The mask was changed since you loaded it."),
                    {"current_etag": annotation.etag, "revision": annotation.revision_count},
                )
        was_new, old_state = not annotation.revision_count, annotation.state
        revision = _revision_add(
            user=user, annotation=annotation, checked=checked, source=source, note=note
        )
        # The case's status derives from the set of annotation states: it can only change
        # when this save adds an annotation or changes its state (keeps plain saves lean).
        if was_new or old_state != annotation.state or series.case.status in _PRE_ANNOTATION:
            _case_status_refresh(user=user, case=series.case)
    revision.annotation = annotation
    return revision


def annotation_revision_restore(
    *, user: User, annotation: Annotation, number: int, if_match: str | None = None
) -> AnnotationRevision:
    """Makes revision ``number`` the current mask again, as a new revision (history stays)."""
    _require_own(user=user, annotation=annotation)
    with storage.transactional():
        locked = (
            Annotation.objects.select_for_update(of=("self",))
            .select_related("series__case")
            .get(pk=annotation.pk)
        )
        if if_match and not _etag_matches(if_match, locked):
            raise PreconditionFailedError(
                _("The mask was changed since you loaded it."),
                {"current_etag": locked.etag, "revision": locked.revision_count},
            )
        old = AnnotationRevision.objects.filter(annotation=locked, number=number).first()
        if old is None:
            raise ApplicationError(_("No such revision."), {"revision": number}, status=404)
        array = storage.read_array(old.key)
        checked = mask_validate(series=locked.series, array=array)
        revision = _revision_add(
            user=user,
            annotation=locked,
            checked=checked,
            source=AnnotationRevision.Source.RESTORE,
            restored_from=number,
        )
        _case_status_refresh(user=user, case=locked.series.case)
    revision.annotation = locked
    return revision


def annotation_import_mask(
    *,
    user: User | None,
    series: Series,
    mask: np.ndarray,
    state: str = State.DRAFT,
    note: str = "",
    annotator: User | None = None,
    is_consensus: bool = False,
    source: str = AnnotationRevision.Source.IMPORT,
) -> Annotation:
    """Creates (or extends) an annotation from an array, without the editor's locking.

    Used to load phantom ground truth as approved annotations (``state="approved"``), to
    accept a model prediction as a new draft (``source="prediction"``) and by adjudication
    (``is_consensus=True``). ``annotator`` defaults to ``user``. Preconditions: the caller has
    already checked that ``user`` may do this (demo setup, review pages); ``mask`` has the
    series' shape and only labels of the active set.
    """
    if state not in (State.DRAFT, State.APPROVED):
        raise ApplicationError(_("An import is a draft or approved."), {"state": state})
    owner = None if is_consensus else (annotator or user)
    if owner is None and not is_consensus:
        raise ApplicationError(_("An imported mask needs an annotator."), {})
    checked = mask_validate(series=series, array=mask)
    if state == State.APPROVED:
        # An approved import (ground truth, consensus) is training data like a reviewed mask:
        # the same one-etiology rule holds. Phantom ground truth is consistent by design.
        _require_etiology_consistent(
            case=series.case, label_counts=checked.counts, action="approve"
        )
    with storage.transactional():
        annotation = _annotation_for_write(
            series=series, annotator=owner, is_consensus=is_consensus
        )
        annotation.series = series
        # The revision is the owner's mask (lists and revision history name the same person);
        # whoever imported it approves it and is in the audit trail.
        _revision_add(
            user=owner or user, annotation=annotation, checked=checked, source=source, note=note
        )
        if state == State.APPROVED and annotation.state != State.APPROVED:
            old = annotation.state
            annotation.state = State.APPROVED
            annotation.reviewer = user if user is not None and user.is_authenticated else None
            annotation.reviewed_at = timezone.now()
            annotation.review_comment = note
            annotation.save(
                update_fields=["state", "reviewer", "reviewed_at", "review_comment", "updated_at"]
            )
            audit_record(
                actor=user,
                verb="annotation.state_changed",
                target=annotation,
                case=series.case,
                data={"from": old, "to": State.APPROVED, "reason": "imported"},
            )
        _case_status_refresh(user=user, case=series.case)
    return annotation


# --- workflow ------------------------------------------------------------------------------
def _require_own(*, user: User, annotation: Annotation) -> None:
    _require_annotator(user)
    if annotation.is_consensus or annotation.annotator_id != user.pk:
        raise ForbiddenError(_("This is another annotator's mask."), {"annotation": annotation.pk})


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
        if if_match and not _etag_matches(if_match, locked):
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
        _case_status_refresh(user=user, case=locked.series.case)
    return locked


def _check_labels_for_submit(annotation: Annotation) -> None:
    revision = annotation.current_revision
    _require_etiology_consistent(
        case=annotation.series.case,
        label_counts=revision.label_counts if revision else {},
        action="submit",
    )


def _check_labels_for_approve(annotation: Annotation) -> None:
    revision = annotation.current_revision
    _require_etiology_consistent(
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
    _require_own(user=user, annotation=annotation)
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
    _require_annotator(user)
    allowed = {k: v for k, v in data.items() if k in {"etiology", "confirmed", "note"}}
    return case_update(user=user, case=case, data=allowed)
