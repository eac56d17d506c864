"""The upload page: drag and drop, progress, errors (the JS posts to the upload API).

``GET /cases/<id>/upload/`` renders the page; ``POST`` is the no-JavaScript fallback of the
same form (multipart ``files`` + ``kind``), answered with a redirect to the case or the page
again with the error.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from accounts.auth import request_user
from cases.models import Case, Series
from cases.selectors import case_get_for_user
from cases.services.upload import UploadResult, upload_inputs_from_files, upload_start
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError


def _writable_case(request: HttpRequest, case_id: int) -> Case:
    try:
        return case_get_for_user(user=request.user, case_id=case_id, for_write=True)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ForbiddenError as exc:
        raise PermissionDenied(exc.message) from exc


@login_required
@require_http_methods(["GET", "POST"])
def case_upload_view(request: HttpRequest, case_id: int) -> HttpResponse:
    case = _writable_case(request, case_id)
    error: ApplicationError | None = None
    if request.method == "POST":
        try:
            result = upload_start(
                user=request_user(request),
                case=case,
                inputs=upload_inputs_from_files(request.FILES.getlist("files")),
                kind=request.POST.get("kind") or None,
            )
        except ApplicationError as exc:
            error = exc
        else:
            if isinstance(result, UploadResult):
                messages.success(
                    request,
                    _("%(count)d series uploaded.") % {"count": len(result.series)},
                )
            else:
                messages.info(request, _("The upload is being processed in the background."))
            return redirect("cases:detail", case_id=case.pk)
    context = {
        "case": case,
        "kinds": Series.Kind.choices,
        "max_upload_bytes": app_settings.MAX_UPLOAD_BYTES,
        "max_upload_files": app_settings.MAX_UPLOAD_FILES,
        "error": error,
    }
    return render(
        request,
        "cases/upload.html",
        context,
        status=error.status_code if error is not None else 200,
    )
