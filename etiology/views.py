"""Pages of the etiology app: the case page's work-up panel, its form, the open checks list."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.auth import request_user
from cases.models import Case
from cases.selectors import case_can_write, case_get_for_user, case_visible_queryset
from etiology.reasoning.workup import FIELDS
from etiology.selectors import cases_with_checks, checks_can_list, checks_for_case, workup_for_case
from etiology.services import workup_replace
from strokeaid_site.errors import ApplicationError, ForbiddenError


def _rows(workup: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "kind": f.kind, "label": _(f.label), "value": workup[f.name], **_bounds(f)}
        for f in FIELDS
    ]


def _bounds(field: Any) -> dict[str, Any]:
    return {"minimum": field.minimum, "maximum": field.maximum, "max_length": field.max_length}


def case_panel_context(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    """The "Work-up and checks" panel of the case page."""
    return {
        "workup_rows": _rows(workup_for_case(case=case)),
        "can_edit_workup": case_can_write(user=request.user, case=case),
        "checks": checks_for_case(case=case),
        "workup_url": reverse("etiology:workup-update", args=[case.pk]),
    }


def _typed(field: Any, raw: str) -> Any:
    """A form value as the REST type (the service validates it like any PUT)."""
    raw = raw.strip()
    if raw == "":
        return None
    if field.kind == "bool":
        return {"yes": True, "no": False}.get(raw, raw)
    if field.kind == "int":
        try:
            return int(raw)
        except ValueError:
            return raw
    return raw


@login_required
@require_POST
def workup_update_view(request: HttpRequest, case_id: int) -> HttpResponse:
    case = case_get_for_user(user=request.user, case_id=case_id, for_write=True)
    data = {f.name: _typed(f, request.POST.get(f.name, "")) for f in FIELDS}
    try:
        workup_replace(user=request_user(request), case=case, data=data)
    except ApplicationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Work-up saved."))
    return HttpResponseRedirect(reverse("cases:detail", args=[case.pk]) + "#workup")


@login_required
def checks_list_view(request: HttpRequest) -> HttpResponse:
    if not checks_can_list(user=request.user):
        raise ForbiddenError(_("Only data managers, neurologists and reviewers see all checks."))
    rows = cases_with_checks(cases=case_visible_queryset(user=request.user))
    return render(request, "etiology/checks.html", {"rows": rows})
