"""Agreement between annotators on a series, and adjudication into a consensus annotation.

* Pairwise Dice per label between every two annotators' current masks (the ML core's
  ``pairwise_dice``; a label absent from both masks agrees perfectly, Dice 1).
* The etiology a mask implies is its majority label by lesion volume (voxel counts are stored
  with every revision, so no mask is read for it). Cohen's kappa per annotator pair and
  Fleiss' kappa are computed over every series both (all) annotators drew, since a kappa of
  one series (one subject) says nothing.
* Consensus (reviewers): ``pick`` copies one annotation's mask; ``majority`` is a voxel-wise
  vote: a voxel is lesion when more than half of the annotators marked it (any label), and
  takes the label most of them gave it (ties -> the label with the larger total volume across
  the masks, so a tie follows the dominant etiology). The result is stored through the
  annotation app's ``annotation_import_mask(is_consensus=True)`` as an APPROVED consensus:
  a reviewer adjudicating is the review.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from accounts.roles import REVIEWER, has_role
from annotation.models import Annotation
from annotation.selectors import annotation_list_for_series, mask_array
from annotation.services import annotation_import_mask
from cases.models import Label, Series
from cases.selectors import labels_active
from inference.exports.formats.base import pseudonym
from inference.ml.metrics import cohen_kappa, fleiss_kappa, pairwise_dice
from strokeaid_site.errors import ApplicationError, ForbiddenError

if TYPE_CHECKING:
    from annotation.models import AnnotationRevision

CONSENSUS_METHODS = ("pick", "majority")


def implied_etiology(label_counts: dict[str, int] | None) -> int | None:
    """The label value with the most voxels (ties: the lower value); None for an empty mask."""
    counts = {int(k): int(v) for k, v in (label_counts or {}).items() if int(v) > 0}
    if not counts:
        return None
    return max(sorted(counts), key=lambda v: counts[v])


def _rater_annotations(series: Series) -> list[Annotation]:
    return [
        a
        for a in annotation_list_for_series(series=series)
        if not a.is_consensus and a.current_revision is not None
    ]


def _revision(annotation: Annotation) -> AnnotationRevision:
    """The current revision of an annotation from ``_rater_annotations`` (never None there)."""
    return cast("AnnotationRevision", annotation.current_revision)


def _kappas(raters: list[int]) -> dict[str, Any]:
    """Cohen per pair and Fleiss over the series every one of ``raters`` drew."""
    if len(raters) < 2:
        return {"cohen": [], "fleiss": None}
    rows = (
        Annotation.objects.filter(
            annotator_id__in=raters, is_consensus=False, current_revision__isnull=False
        )
        .values_list("series_id", "annotator_id", "current_revision__label_counts")
        .order_by("series_id", "annotator_id")
    )
    per_series: dict[int, dict[int, int | None]] = defaultdict(dict)
    for series_id, annotator_id, counts in rows:
        per_series[series_id][annotator_id] = implied_etiology(counts)
    none = 0  # "no lesion" is a rating of its own (category 0)
    cohen = []
    for a, b in itertools.combinations(sorted(raters), 2):
        shared = [s for s, r in per_series.items() if a in r and b in r]
        ra = [per_series[s][a] or none for s in shared]
        rb = [per_series[s][b] or none for s in shared]
        cohen.append(
            {
                "a": pseudonym(a, consensus=False),
                "b": pseudonym(b, consensus=False),
                "series": len(shared),
                "kappa": round(cohen_kappa(ra, rb), 4) if shared else None,
            }
        )
    complete = [s for s, r in per_series.items() if all(x in r for x in raters)]
    fleiss = None
    if complete:
        ratings = [[per_series[s][x] or none for x in raters] for s in complete]
        fleiss = {"kappa": round(fleiss_kappa(ratings), 4), "series": len(complete)}
    return {"cohen": cohen, "fleiss": fleiss}


def series_agreement(*, series: Series) -> dict[str, Any]:
    """Agreement of the annotators of ``series`` (the caller checked access to it)."""
    annotations = _rater_annotations(series)
    labels = {lab.value: lab.name for lab in labels_active()}
    names = {a.pk: pseudonym(a.annotator_id, consensus=False) for a in annotations}
    masks = {names[a.pk]: mask_array(revision=_revision(a), mmap=True) for a in annotations}
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for value, name in labels.items():
        for pair, dice in pairwise_dice(masks, label=value).items():
            pairs.setdefault(pair, {"a": pair[0], "b": pair[1], "dice": {}})["dice"][name] = round(
                dice, 4
            )
    for pair, dice in pairwise_dice(masks).items():
        pairs.setdefault(pair, {"a": pair[0], "b": pair[1], "dice": {}})["lesion_dice"] = round(
            dice, 4
        )
    etiologies = {
        a.pk: implied_etiology(a.current_revision.label_counts if a.current_revision else None)
        for a in annotations
    }
    implied = [labels.get(e) if e else None for e in etiologies.values()]
    consensus = next((a for a in annotation_list_for_series(series=series) if a.is_consensus), None)
    return {
        "series": series.pk,
        "case": series.case_id,
        "annotations": [
            {
                "id": a.pk,
                "annotator": names[a.pk],
                "state": a.state,
                "revision": a.revision_count,
                "etiology": labels.get(cast(int, etiologies[a.pk])) if etiologies[a.pk] else None,
                "volumes_ml": {
                    labels.get(int(k), k): v for k, v in (_revision(a).volumes_ml or {}).items()
                },
            }
            for a in annotations
        ],
        "pairwise": [pairs[p] for p in sorted(pairs)],
        "etiology_agreement": (len(set(implied)) == 1) if len(implied) >= 2 else None,
        "kappa": _kappas(sorted({a.annotator_id for a in annotations if a.annotator_id})),
        "consensus": (
            {"id": consensus.pk, "state": consensus.state, "revision": consensus.revision_count}
            if consensus
            else None
        ),
    }


def majority_vote(masks: list[np.ndarray], *, label_values: list[int]) -> np.ndarray:
    """Voxel-wise majority consensus of label volumes (see the module docstring)."""
    if not masks:
        raise ValueError("no masks")
    stack = np.stack([np.asarray(m, dtype=np.uint8) for m in masks])
    n = stack.shape[0]
    lesion_votes = (stack > 0).sum(axis=0)
    is_lesion = lesion_votes * 2 > n
    totals = Counter({v: int((stack == v).sum()) for v in label_values})
    # Candidates in tie-break order: larger total volume first, then lower value.
    order = sorted(label_values, key=lambda v: (-totals[v], v))
    best = np.zeros(stack.shape[1:], dtype=np.uint8)
    best_votes = np.zeros(stack.shape[1:], dtype=np.int16)
    for value in order:
        votes = (stack == value).sum(axis=0).astype(np.int16)
        better = votes > best_votes  # strict: earlier (preferred) labels keep ties
        best[better] = value
        best_votes[better] = votes[better]
    return np.where(is_lesion, best, 0).astype(np.uint8)


def consensus_create(
    *,
    user: User,
    series: Series,
    method: str,
    annotation_id: int | None = None,
    annotation_ids: list[int] | None = None,
) -> Annotation:
    """Adjudicates ``series`` into its consensus annotation (reviewers only).

    Raises:
        ForbiddenError: not a reviewer.
        ApplicationError: unknown method, annotation not on this series, fewer than two
            annotations for a vote.
    """
    if not has_role(user, REVIEWER):
        raise ForbiddenError(_("Only reviewers adjudicate annotations."))
    annotations = {a.pk: a for a in _rater_annotations(series)}
    if method == "pick":
        chosen = annotations.get(int(annotation_id or 0))
        if chosen is None:
            raise ApplicationError(
                _("Pick one of this series' annotations."), {"annotation": annotation_id}
            )
        mask = mask_array(revision=_revision(chosen))
        note = f"consensus: picked {pseudonym(chosen.annotator_id, consensus=False)}"
    elif method == "majority":
        ids = annotation_ids or sorted(annotations)
        selected = [annotations[i] for i in ids if i in annotations]
        if len(selected) < 2:
            raise ApplicationError(
                _("A majority vote needs at least two annotations of this series."),
                {"annotations": ids},
            )
        values = list(
            Label.objects.filter(label_set__is_active=True).values_list("value", flat=True)
        )
        mask = majority_vote(
            [mask_array(revision=_revision(a)) for a in selected], label_values=values
        )
        note = "consensus: majority vote of " + ", ".join(
            pseudonym(a.annotator_id, consensus=False) for a in selected
        )
    else:
        raise ApplicationError(
            _("Unknown consensus method."), {"method": method, "allowed": list(CONSENSUS_METHODS)}
        )
    return annotation_import_mask(
        user=user,
        series=series,
        mask=mask,
        state=Annotation.State.APPROVED,
        note=note,
        is_consensus=True,
    )
