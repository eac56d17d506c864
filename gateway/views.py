"""The PACS page: studies the DICOM listener received and what became of them (data
managers). No patient identifier is shown: the pseudonymous case code and the calling AE."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.roles import DATA_MANAGER, has_role
from gateway.models import ReceivedStudy
from strokeaid_site.conf import app_settings


@login_required
def studies_view(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, DATA_MANAGER):
        raise PermissionDenied
    studies = ReceivedStudy.objects.select_related("case")[:200]
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
        },
    )
