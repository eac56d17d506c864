"""Which mask revision of a case trains a model (read-only queries on the annotation app).

One mask per case: the trainer learns from one label volume per case. Rules:

* approved mode (the default dataset): the approved consensus mask when there is one (it
  is the adjudicated truth), else the approved mask on the reference series (DWI first),
  else the most recently reviewed approved mask;
* explicit mode (a data manager lists cases): the newest saved revision of the case,
  whatever its review state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from annotation.models import Annotation
from annotation.selectors import annotations_training_ready
from inference.services.arrays import REFERENCE_KINDS


@dataclass(frozen=True)
class MaskRef:
    """A mask revision chosen for training."""

    annotation_id: int
    revision_id: int
    series_id: int
    series_kind: str
    key: str
    state: str

    def as_json(self) -> dict[str, object]:
        return {
            "annotation": self.annotation_id,
            "revision": self.revision_id,
            "series": self.series_id,
            "kind": self.series_kind,
            "key": self.key,
            "state": self.state,
        }


def _ref(annotation: Annotation) -> MaskRef:
    rev = annotation.current_revision
    assert rev is not None
    return MaskRef(
        annotation_id=annotation.pk,
        revision_id=rev.pk,
        series_id=annotation.series_id,
        series_kind=annotation.series.kind,
        key=rev.key,
        state=annotation.state,
    )


def _kind_rank(kind: str) -> int:
    return REFERENCE_KINDS.index(kind) if kind in REFERENCE_KINDS else len(REFERENCE_KINDS)


def case_masks(
    *, case_ids: Iterable[int], approved_only: bool, confirmed_only: bool = True
) -> dict[int, MaskRef]:
    """``{case id: chosen mask revision}`` for the cases that have one (one query).

    ``approved_only`` with ``confirmed_only=False``: approved masks of any case, also those
    whose etiology is not confirmed (semi-supervised training).
    """
    ids = list(case_ids)
    if approved_only and not confirmed_only:
        qs = Annotation.objects.filter(
            series__case_id__in=ids,
            state=Annotation.State.APPROVED,
            current_revision__isnull=False,
            series__quarantined=False,
        ).select_related("series", "current_revision")
    elif approved_only:
        # The annotation app's definition of training-ready (approved, confirmed case).
        qs = annotations_training_ready().filter(series__case_id__in=ids)
    else:
        qs = Annotation.objects.filter(
            series__case_id__in=ids,
            current_revision__isnull=False,
            series__quarantined=False,
        ).select_related("series", "current_revision")
    chosen: dict[int, Annotation] = {}
    for ann in qs:
        case_id = ann.series.case_id
        best = chosen.get(case_id)
        if best is None or _better(ann, best, approved_only=approved_only):
            chosen[case_id] = ann
    return {case_id: _ref(ann) for case_id, ann in chosen.items()}


def _better(a: Annotation, b: Annotation, *, approved_only: bool) -> bool:
    assert a.current_revision is not None and b.current_revision is not None
    if not approved_only:
        return (a.current_revision.created_at, a.current_revision.pk) > (
            b.current_revision.created_at,
            b.current_revision.pk,
        )
    key_a = (a.is_consensus, -_kind_rank(a.series.kind), a.reviewed_at or a.updated_at, a.pk)
    key_b = (b.is_consensus, -_kind_rank(b.series.kind), b.reviewed_at or b.updated_at, b.pk)
    return key_a > key_b
