"""Reads of the exports room: export jobs, the keys they own, and the cases a filter matches."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, has_role
from cases.models import Case
from inference.models import ExportJob
from strokeaid_site.errors import NotFoundError


def export_list(*, limit: int) -> list[ExportJob]:
    """The newest exports (data managers see every export)."""
    return list(ExportJob.objects.order_by("-created_at", "-id")[:limit])


def export_get(*, export_id: int) -> ExportJob:
    """One export (the caller checked the data-manager role).

    Raises:
        NotFoundError: no such export.
    """
    job = ExportJob.objects.filter(pk=export_id).first()
    if job is None:
        raise NotFoundError(_("Export not found."), {"export": export_id})
    return job


def export_can_view(user: Any, export_id: int) -> bool:
    """Websocket access check for ``ws/jobs/export/<id>/`` (data managers only)."""
    return has_role(user, DATA_MANAGER) and ExportJob.objects.filter(pk=export_id).exists()


def export_keys_referenced() -> list[str]:
    """Stored zips of exports (kept by the orphan sweep)."""
    return [key for key in ExportJob.objects.values_list("result_key", flat=True) if key]


def export_case_ids_matching(
    *,
    confirmed: str,
    etiology: str | None,
    created_after: Any,
    created_before: Any,
    approved_only: bool,
) -> list[int]:
    """Ids of the cases with a saved mask (an approved one with ``approved_only``) that match
    the export form's filters; ``confirmed`` is "yes", "no" or anything else for both."""
    from annotation.models import Annotation

    qs = Case.objects.all()
    if confirmed in ("yes", "no"):
        qs = qs.filter(confirmed=confirmed == "yes")
    if etiology:
        qs = qs.filter(etiology__name=etiology)
    if created_after:
        qs = qs.filter(created_at__date__gte=created_after)
    if created_before:
        qs = qs.filter(created_at__date__lte=created_before)
    masked = Annotation.objects.filter(current_revision__isnull=False)
    if approved_only:
        masked = masked.filter(state=Annotation.State.APPROVED)
    qs = qs.filter(pk__in=masked.values("series__case_id"))
    return sorted(qs.values_list("pk", flat=True))
