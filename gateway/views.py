"""The PACS page: studies the DICOM listener received and what became of them (data
managers). No patient identifier is shown: the pseudonymous case code and the calling AE."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import DATA_MANAGER, has_role
from cases.models import Case
from gateway.models import ReceivedStudy
from gateway.results import destinations
from gateway.selectors import destination_statuses, received_studies_recent, received_study_for_case
from strokeaid_site.conf import app_settings


@login_required
def studies_view(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, DATA_MANAGER):
        raise PermissionDenied
    studies = received_studies_recent()
    known = destination_statuses()
    targets = [{"destination": d, "status": known.get(d.name)} for d in destinations()]
    return render(
        request,
        "gateway/studies.html",
        {
            "studies": studies,
            "ae_title": app_settings.DICOM_AE_TITLE,
            "port": app_settings.DICOM_PORT,
            "peers": [p for p in str(app_settings.DICOM_PEERS).split(",") if p.strip()],
            "timeout": app_settings.DICOM_STUDY_TIMEOUT,
            "autopredict": app_settings.DICOM_AUTOPREDICT,
            "targets": targets,
        },
    )


def case_panel_context(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    """The case page's "From the PACS" panel: where a gateway case came from and whether
    its results reached the PACS (hidden for cases that did not come through the gateway)."""
    study = received_study_for_case(case=case)
    if study is None:
        return None
    return {"study": study, "pending": study.state == ReceivedStudy.State.PREDICTED}


def import_panel_context(request: HttpRequest) -> dict[str, Any] | None:
    """The case list's "Import from PACS" dialog: shown when a PACS DICOMweb service is
    configured and the user may create cases."""
    from cases.selectors import case_can_create
    from gateway.dicomweb import pacs_configured

    if not pacs_configured() or not case_can_create(user=request.user):
        return None
    return {"pacs_url": str(app_settings.DICOMWEB_URL)}
