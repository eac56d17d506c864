"""django-q2 tasks of model reviews and promotion comparisons: they take ids and call the
services."""

from __future__ import annotations


def model_review_compute(model_id: int, split: str, user_id: int | None = None) -> str:
    """Default cluster task: predict a model's split and cache the per-case review numbers."""
    from inference.review.services import model_review_compute as _compute

    result = _compute(model_id=model_id, split=split, user_id=user_id)
    return str(result.get("status", "done"))


def promotion_comparison_compute(candidate_id: int, active_id: int, user_id: int | None) -> str:
    """Default cluster task: score a candidate and the active model on their shared cases."""
    from django.contrib.auth import get_user_model

    from inference.models import ModelVersion
    from inference.services.promotion import comparison_compute

    candidate = ModelVersion.objects.get(pk=candidate_id)
    active = ModelVersion.objects.get(pk=active_id)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    result = comparison_compute(candidate=candidate, active=active, user=user)
    return f"{result['n']} shared cases, worse: {result['worse']}"
