"""Reads of the annotation app: who sees which annotation, queues, and training-ready masks.

Visibility follows the case: whoever may see a series' case sees every annotation on it
(neurologists, reviewers and data managers all cases; clinicians their own cases). Writing is
decided by the services (neurologists draw their own masks, reviewers review others').
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db.models import Case as When_
from django.db.models import IntegerField, QuerySet, Value, When
from django.utils.translation import gettext as _

from accounts.roles import NEUROLOGIST, REVIEWER, has_role
from cases import storage
from cases.models import Case, Series
from cases.selectors import case_visible_queryset, series_kind_order
from strokeaid_site.errors import NotFoundError

from .models import Annotation, AnnotationRevision

User = AbstractBaseUser | AnonymousUser
State = Annotation.State

_RELATED = (
    "series__case__etiology",
    "annotator",
    "reviewer",
    "current_revision__created_by",
)


def annotation_visible_queryset(*, user: User) -> QuerySet[Annotation]:
    return Annotation.objects.filter(series__case__in=case_visible_queryset(user=user))


def annotation_get_for_user(*, user: User, annotation_id: int) -> Annotation:
    """The annotation as ``user`` may see it (404 when unknown or its case is not visible)."""
    annotation = (
        annotation_visible_queryset(user=user)
        .select_related(*_RELATED)
        .filter(pk=annotation_id)
        .first()
    )
    if annotation is None:
        raise NotFoundError(_("Annotation not found."), {"annotation": annotation_id})
    return annotation


def annotation_list_for_series(*, series: Series) -> QuerySet[Annotation]:
    """Every annotation on a series the caller already got via ``series_get_for_user``."""
    return (
        Annotation.objects.filter(series=series)
        .select_related(*_RELATED)
        .order_by("-is_consensus", "id")
    )


def annotation_list_for_case(*, case: Case) -> QuerySet[Annotation]:
    """Every annotation on a case's series (the case came from ``case_get_for_user``)."""
    return (
        Annotation.objects.filter(series__case=case)
        .select_related(*_RELATED)
        .order_by(series_kind_order("series__"), "series_id", "-is_consensus", "id")
    )


def annotation_own(*, user: User, series: Series) -> Annotation | None:
    """The caller's own (non-consensus) annotation on ``series``, if any."""
    if not user.is_authenticated:
        return None
    return (
        Annotation.objects.filter(series=series, annotator_id=user.pk, is_consensus=False)
        .select_related("current_revision")
        .first()
    )


def annotation_revisions(*, annotation: Annotation) -> QuerySet[AnnotationRevision]:
    return (
        AnnotationRevision.objects.filter(annotation=annotation)
        .select_related("created_by")
        .order_by("-number")
    )


def annotation_revision_get(*, annotation: Annotation, number: int | None) -> AnnotationRevision:
    """Revision ``number`` of ``annotation`` (the current one when ``number`` is None)."""
    if number is None:
        revision = annotation.current_revision
    else:
        revision = AnnotationRevision.objects.filter(annotation=annotation, number=number).first()
    if revision is None:
        raise NotFoundError(_("No such revision."), {"revision": number})
    return revision


def mask_array(*, revision: AnnotationRevision, mmap: bool = False) -> np.ndarray:
    """The stored uint8 (z, y, x) label volume of a revision."""
    return storage.read_array(revision.key, mmap=mmap)


def review_queue_for_user(*, user: User) -> QuerySet[Annotation]:
    """Submitted work a reviewer may act on (never their own), oldest submission first."""
    if not has_role(user, REVIEWER):
        return Annotation.objects.none()
    return (
        annotation_visible_queryset(user=user)
        .filter(state=State.SUBMITTED)
        .exclude(annotator_id=user.pk)
        .select_related(*_RELATED)
        .order_by("submitted_at", "id")
    )


def my_work_for_user(*, user: User) -> QuerySet[Annotation]:
    """The caller's annotations, returned work first, then drafts, submitted, approved."""
    if not has_role(user, NEUROLOGIST):
        return Annotation.objects.none()
    order = When_(
        When(state=State.RETURNED, then=Value(0)),
        When(state=State.DRAFT, then=Value(1)),
        When(state=State.SUBMITTED, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    return (
        Annotation.objects.filter(annotator_id=user.pk, is_consensus=False)
        .select_related(*_RELATED)
        .annotate(state_order=order)
        .order_by("state_order", "-updated_at", "-id")
    )


# --- for the inference and review apps -----------------------------------------------------
def annotations_training_ready() -> QuerySet[Annotation]:
    """Approved annotations of confirmed cases on usable series: the training data.

    Each row has ``series``, ``series__case`` (with ``etiology``) and ``current_revision``
    loaded; read its mask with ``mask_array(revision=a.current_revision)``. A series may have
    several (several annotators, and a consensus listed first): choose per series, e.g. the
    consensus when present. Editing an approved mask sends it back to draft, so the current
    revision of an approved annotation is always the approved one.
    """
    return (
        Annotation.objects.filter(
            state=State.APPROVED,
            series__case__confirmed=True,
            series__case__etiology__isnull=False,
            series__quarantined=False,
            current_revision__isnull=False,
        )
        .select_related("series__case__etiology", "current_revision", "annotator")
        .order_by("series__case_id", "series_id", "-is_consensus", "-reviewed_at", "id")
    )


def annotation_latest_revision_for(
    *,
    series: Series,
    annotator: AuthUser | None = None,
    approved_only: bool = False,
    consensus_first: bool = True,
) -> AnnotationRevision | None:
    """The newest mask revision on ``series`` (any state unless ``approved_only``).

    ``annotator`` limits it to one annotator's mask; otherwise the consensus wins when
    ``consensus_first``, then the most recently saved annotation. None when nothing is saved.
    """
    qs = Annotation.objects.filter(series=series, current_revision__isnull=False)
    if annotator is not None:
        qs = qs.filter(annotator=annotator, is_consensus=False)
    if approved_only:
        qs = qs.filter(state=State.APPROVED)
    ordering: list[Any] = ["-current_revision__created_at", "-id"]
    if consensus_first:
        ordering.insert(0, "-is_consensus")
    annotation = qs.select_related("current_revision").order_by(*ordering).first()
    return annotation.current_revision if annotation else None


def mask_keys_referenced() -> list[str]:
    """Storage keys of every mask revision (the orphan sweep keeps these)."""
    return list(AnnotationRevision.objects.values_list("key", flat=True))
