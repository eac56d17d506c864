"""Background tasks of the cases app (django-q2): they take ids and call services."""

from __future__ import annotations

from cases.services.upload import upload_job_run


def upload_job_run_task(job_id: int) -> str:
    """Runs the staged upload ``job_id``; returns its final status (kept in the task result)."""
    return upload_job_run(job_id=job_id).status
