"""The cryptogenic explorer: what the active model suggests for every case whose etiology is
undetermined ("cryptogenic"), to find the mechanisms a work-up missed.

A suggestion is the probability the active model's answer (the case model when present,
else the segmentation vote) gives each DETERMINED mechanism, renormalised without
"cryptogenic": the question is "if there is a mechanism, which one?".
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth.models import User
from django.db.models import QuerySet

from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER, user_roles
from cases.models import Case, Label
from cases.selectors import case_visible_queryset
from inference.models import JobStatus, PredictionJob
from inference.selectors import model_active_get
from inference.services.prediction import prediction_request

#: The label names whose cases the explorer covers.
UNDETERMINED = ("cryptogenic",)
EXPLORER_ROLES = {NEUROLOGIST, DATA_MANAGER, REVIEWER}


def explorer_can_use(*, user: Any) -> bool:
    return bool(user_roles(user) & EXPLORER_ROLES)


def explorer_cases(*, user: Any) -> QuerySet[Case]:
    return (
        case_visible_queryset(user=user)
        .filter(etiology__name__in=UNDETERMINED)
        .select_related("etiology")
        .order_by("code")
    )


def _suggestion(job: PredictionJob) -> tuple[str | None, float, dict[str, float]]:
    combined = (job.reasoning or {}).get("methods", {}).get("combined")
    probs = dict(combined["probabilities"]) if combined else dict(job.probabilities or {})
    if (job.lesions or {}).get("flags") or not probs:
        return None, 0.0, {}
    determined = {k: float(v) for k, v in probs.items() if k not in UNDETERMINED}
    total = sum(determined.values())
    if total <= 0:
        return None, 0.0, {}
    shares = {k: v / total for k, v in determined.items()}
    best = max(shares, key=shares.__getitem__)
    return best, shares[best], shares


def explorer_rows(*, user: Any, order: str = "confidence") -> dict[str, Any]:
    """The explorer's table (one row per undetermined case) and the distribution of the
    suggested mechanisms, for the active model."""
    model = model_active_get()
    cases = list(explorer_cases(user=user))
    latest: dict[int, PredictionJob] = {}
    if model is not None:
        jobs = (
            PredictionJob.objects.filter(case__in=cases, model=model)
            .order_by("case_id", "-created_at", "-id")
            .select_related("etiology")
        )
        for job in jobs:
            latest.setdefault(job.case_id, job)
    titles = {lab.name: lab.title for lab in Label.objects.filter(label_set__is_active=True)}
    rows: list[dict[str, Any]] = []
    for case in cases:
        found = latest.get(case.pk)
        suggested, confidence, shares = (
            _suggestion(found)
            if found is not None and found.status == JobStatus.DONE
            else (None, 0.0, {})
        )
        rows.append(
            {
                "case": case.pk,
                "code": case.code,
                "prediction": found.pk if found is not None else None,
                "status": found.status if found is not None else None,
                "suggested": suggested,
                "confidence": round(confidence, 4),
                "shares": {k: round(v, 4) for k, v in shares.items()},
                "suggested_title": titles.get(suggested or "", suggested),
            }
        )
    if order == "code":
        rows.sort(key=lambda r: r["code"])
    else:
        rows.sort(key=lambda r: (-r["confidence"], r["code"]))
    distribution = Counter(r["suggested"] for r in rows if r["suggested"])
    mean_confidence = {
        name: round(sum(r["confidence"] for r in rows if r["suggested"] == name) / count, 4)
        for name, count in distribution.items()
    }
    return {
        "model": model.pk if model is not None else None,
        "cases": len(rows),
        "predicted": sum(1 for r in rows if r["suggested"]),
        "distribution": dict(sorted(distribution.items())),
        "mean_confidence": mean_confidence,
        "titles": titles,
        "rows": rows,
    }


def explorer_run(*, user: User) -> int:
    """Queues a prediction with the active model for every undetermined case that has none
    (or only a failed one). Returns the number of jobs queued."""
    model = model_active_get()
    if model is None:
        return 0
    done_or_active = set(
        PredictionJob.objects.filter(model=model)
        .exclude(status=JobStatus.FAILED)
        .values_list("case_id", flat=True)
    )
    queued = 0
    for case in explorer_cases(user=user):
        if case.pk in done_or_active:
            continue
        _, created = prediction_request(user=user, case=case, model=model)
        queued += int(created)
    return queued
