"""Mask revisions: saves from the editor, restores of an older revision, imports (a
prediction accepted as a draft, a consensus, the demo)."""

from __future__ import annotations

import numpy as np
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Series
from cases.services.audit import audit_record
from strokeaid_site.errors import (
    ApplicationError,
    PreconditionFailedError,
    PreconditionRequiredError,
)

from ..models import Annotation, AnnotationRevision
from .status import PRE_ANNOTATION, State, case_status_refresh
from .validation import (
    CheckedMask,
    etag_matches,
    mask_validate,
    require_annotator,
    require_etiology_consistent,
    require_own,
    voxel_volume_ml,
)


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
    require_annotator(user)
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
            if not etag_matches(if_match, annotation):
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
        if was_new or old_state != annotation.state or series.case.status in PRE_ANNOTATION:
            case_status_refresh(user=user, case=series.case)
    revision.annotation = annotation
    return revision


def annotation_revision_restore(
    *, user: User, annotation: Annotation, number: int, if_match: str | None = None
) -> AnnotationRevision:
    """Makes revision ``number`` the current mask again, as a new revision (history stays)."""
    require_own(user=user, annotation=annotation)
    with storage.transactional():
        locked = (
            Annotation.objects.select_for_update(of=("self",))
            .select_related("series__case")
            .get(pk=annotation.pk)
        )
        if if_match and not etag_matches(if_match, locked):
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
        case_status_refresh(user=user, case=locked.series.case)
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
        require_etiology_consistent(case=series.case, label_counts=checked.counts, action="approve")
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
        case_status_refresh(user=user, case=series.case)
    return annotation
