"""The exports page (data managers): filters, start an export, its progress and download."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.translation import gettext as _

from accounts.auth import request_user
from accounts.roles import DATA_MANAGER, has_role
from cases.selectors import labels_active
from inference import selectors
from inference.exports import selectors as export_selectors
from inference.exports import services as export_services
from inference.models import ExportJob
from inference.views import job_status_labels
from strokeaid_site.errors import ApplicationError


@login_required
def exports_page(request: HttpRequest) -> HttpResponse:
    """``/models/exports/``: filters, start an export, progress and downloads."""
    if not has_role(request.user, DATA_MANAGER):
        raise PermissionDenied
    if request.method == "POST":
        try:
            job = _export_from_form(request)
        except (ApplicationError, ValueError) as exc:
            messages.error(request, getattr(exc, "message", None) or _("Invalid input."))
            return HttpResponseRedirect(request.path)
        messages.success(request, _("Export %(id)s queued.") % {"id": job.pk})
        return HttpResponseRedirect(request.path)
    return render(
        request,
        "inference/exports/exports.html",
        {
            "jobs": export_selectors.export_list(limit=30),
            "labels": list(labels_active()),
            "formats": ExportJob.Format.choices,
            "status_labels": job_status_labels(),
        },
    )


def _export_from_form(request: HttpRequest) -> ExportJob:
    post = request.POST
    fmt = post.get("format", "")
    filters = {
        "etiology": post.get("etiology") or None,
        "created_after": post.get("created_after") or None,
        "created_before": post.get("created_before") or None,
    }
    # Codes as the case list shows them (ids still work); unknown ones are a clear error.
    explicit = selectors.case_ids_resolve(user=request.user, text=post.get("cases") or "")
    approved_only = bool(post.get("approved_only"))
    confirmed = post.get("confirmed", "yes")
    case_ids: list[int] | None
    if explicit:
        case_ids = explicit
    elif approved_only and confirmed == "yes":
        case_ids = None  # the default dataset: confirmed cases with approved masks
    else:
        # Other combinations become an explicit list (newest mask of each case).
        case_ids = export_selectors.export_case_ids_matching(
            confirmed=confirmed,
            etiology=filters["etiology"],
            created_after=filters["created_after"],
            created_before=filters["created_before"],
            approved_only=approved_only,
        )
        if not case_ids:
            raise ApplicationError(_("No case matches these filters."))
        filters = {}
    job, _created = export_services.export_request(
        user=request_user(request),
        format=fmt,
        case_ids=case_ids,
        filters={k: v for k, v in filters.items() if v},
    )
    return job
