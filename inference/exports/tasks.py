"""django-q2 tasks of exports: they take ids and call the services."""

from __future__ import annotations


def export_execute(job_id: int) -> str:
    """Default cluster task: build one export."""
    from inference.exports.services import export_execute as _export_execute

    return str(_export_execute(job_id=job_id).status)
