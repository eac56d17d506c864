"""django-q2 tasks of exports and review evaluations: they take ids and call the services."""

from __future__ import annotations


def export_execute(job_id: int) -> str:
    """Default cluster task: build one export."""
    from inference.services.export import export_execute as _export_execute

    return str(_export_execute(job_id=job_id).status)


def model_review_compute(model_id: int, split: str, user_id: int | None = None) -> str:
    """Default cluster task: predict a model's split and cache the per-case review numbers."""
    from inference.services.review import model_review_compute as _compute

    result = _compute(model_id=model_id, split=split, user_id=user_id)
    return str(result.get("status", "done"))
