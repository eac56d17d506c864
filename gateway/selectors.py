"""Reads of the DICOM gateway (the pages and REST views call these; they query nothing)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from cases.models import Case
from gateway.models import DestinationStatus, PacsImport, ReceivedStudy


def received_studies_recent(*, limit: int = 200) -> list[ReceivedStudy]:
    """The latest received studies with their cases, newest first (the PACS page)."""
    return list(ReceivedStudy.objects.select_related("case")[:limit])


def destination_statuses() -> dict[str, DestinationStatus]:
    """The last result of every destination ever sent to, by name."""
    return {d.name: d for d in DestinationStatus.objects.all()}


def received_study_for_case(*, case: Case) -> ReceivedStudy | None:
    """The received study ``case`` was made from, or None for a case not from the gateway."""
    return ReceivedStudy.objects.filter(case=case).first()


def pacs_import_get_for_user(*, user: Any, job_id: int) -> PacsImport | None:
    """``user``'s own import ``job_id`` with its case, or None (someone else's is not found)."""
    found: QuerySet[PacsImport] = PacsImport.objects.select_related("received__case").filter(
        pk=job_id, created_by=user
    )
    return found.first()
