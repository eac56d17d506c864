"""Model promotion is a decision: the candidate against the active model on the same cases.

The shared test set is the candidate's held-out split (test, else validation) minus every case
the active model trained or validated on, so neither model has seen any of it. Both models
predict those cases (done predictions are reused) and are scored with the review numbers:
lesion Dice, lesion-wise F1 and case macro-F1, each with its number of cases and a bootstrap
95 % interval. A candidate worse than the active model on that set by more than
``WORSE_MARGIN`` on lesion Dice or case macro-F1 is activated only with an override reason,
which the audit trail keeps with the comparison.

The comparison is cached beside the weights (keyed by both models' weights), so the
activation page, the REST call and the end of a training run compute it once.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _

from cases import storage
from inference.models import DatasetItem, ModelVersion
from inference.review.selectors import labels_by_value, review_split
from inference.review.services import evaluation_rows
from inference.services.summary import summary_of

#: How much lower (absolute) a headline number may be before the candidate counts as worse.
WORSE_MARGIN = 0.01
#: Below this many shared cases the page warns that the comparison is a small sample.
SMALL_N = 20


def shared_test_items(*, candidate: ModelVersion, active: ModelVersion) -> list[DatasetItem]:
    """The candidate's held-out cases that the active model never trained or validated on."""
    split = review_split(candidate)
    if split is None:
        return []
    seen: set[int] = set()
    if active.dataset_id is not None:
        seen = set(
            DatasetItem.objects.filter(
                snapshot_id=active.dataset_id,
                split__in=[DatasetItem.Split.TRAIN, DatasetItem.Split.VAL],
                case__isnull=False,
            ).values_list("case_id", flat=True)
        )
    items = (
        DatasetItem.objects.filter(snapshot_id=candidate.dataset_id, split=split)
        .select_related("case", "etiology")
        .order_by("case_id")
    )
    return [i for i in items if i.case_id is not None and i.case_id not in seen]


def _cache_key(candidate: ModelVersion, active: ModelVersion) -> str:
    return storage.model_key(
        name=(
            f"promotion/{candidate.pk}-{candidate.weights_sha256[:12]}"
            f"-vs-{active.pk}-{active.weights_sha256[:12]}.json"
        )
    )


def comparison_get(*, candidate: ModelVersion, active: ModelVersion) -> dict[str, Any] | None:
    """The cached comparison (None until computed)."""
    key = _cache_key(candidate, active)
    if not storage.exists(key):
        return None
    return cast(dict[str, Any], json.loads(storage.read_bytes(key)))


def comparison_compute(
    *, candidate: ModelVersion, active: ModelVersion, user: User | None
) -> dict[str, Any]:
    """Scores both models on the shared test set and caches the verdict."""

    names = [lab.name for _v, lab in sorted(labels_by_value().items())]
    user = user or candidate.created_by
    items = shared_test_items(candidate=candidate, active=active)
    candidate_rows = evaluation_rows(model=candidate, items=items, user=user)
    active_rows = evaluation_rows(model=active, items=items, user=user)
    # Only cases both models answered count, so the numbers rest on the same cases.
    ok = {r["case"] for r in candidate_rows if r.get("status") == "done"} & {
        r["case"] for r in active_rows if r.get("status") == "done"
    }
    cand = summary_of([r for r in candidate_rows if r["case"] in ok], names)
    act = summary_of([r for r in active_rows if r["case"] in ok], names)
    worse: list[str] = []
    for key in ("dice", "macro_f1"):
        c, a = cand[key]["value"], act[key]["value"]
        if c is not None and a is not None and c < a - WORSE_MARGIN:
            worse.append(key)
    result = {
        "candidate": candidate.pk,
        "active": active.pk,
        "computed_at": timezone.now().isoformat(),
        "split": review_split(candidate),
        "cases": sorted(ok),
        "n": len(ok),
        "small": len(ok) < SMALL_N,
        "candidate_numbers": cand,
        "active_numbers": act,
        "worse_on": worse,
        "worse": bool(worse),
    }
    storage.write_bytes(_cache_key(candidate, active), json.dumps(result).encode())
    return result


def comparison_for(
    *, candidate: ModelVersion, active: ModelVersion, user: User | None
) -> dict[str, Any]:
    """The cached comparison, computed now when missing."""
    found = comparison_get(candidate=candidate, active=active)
    if found is None:
        found = comparison_compute(candidate=candidate, active=active, user=user)
    return found


def comparison_request(*, candidate: ModelVersion, active: ModelVersion, user: User) -> None:
    """Queues the comparison on a worker (after commit); the page polls for it."""
    from django.db import transaction
    from django_q.tasks import async_task

    candidate_id, active_id, user_id = candidate.pk, active.pk, user.pk
    transaction.on_commit(
        lambda: async_task(
            "inference.review.tasks.promotion_comparison_compute",
            candidate_id,
            active_id,
            user_id,
            task_name=f"promotion-{candidate_id}-vs-{active_id}",
            group="review",
        )
    )


def comparison_sentence(comparison: dict[str, Any]) -> str:
    """One line for logs and messages."""
    if not comparison["n"]:
        return _("No shared held-out cases: the two models cannot be compared on the same cases.")
    c, a = comparison["candidate_numbers"], comparison["active_numbers"]
    return _(
        "On %(n)s shared held-out cases: lesion Dice %(cd)s vs %(ad)s, case macro-F1 "
        "%(cf)s vs %(af)s (candidate vs active)."
    ) % {
        "n": comparison["n"],
        "cd": _fmt(c["dice"]["value"]),
        "ad": _fmt(a["dice"]["value"]),
        "cf": _fmt(c["macro_f1"]["value"]),
        "af": _fmt(a["macro_f1"]["value"]),
    }


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"
