"""django-q tasks of the gateway."""

from __future__ import annotations

from gateway.dicomweb import pacs_import_execute as _execute


def pacs_import_execute(job_id: int) -> None:
    """Worker entry point of a PACS import (``gateway.dicomweb.pacs_import_execute``)."""
    _execute(job_id=job_id)
