"""Pages of the cases app: the case list (with filters and a "New case" form) and a case."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.auth import request_user
from accounts.roles import DATA_MANAGER, has_role
from cases.models import Case, Series
from cases.panels import case_actions_for, case_list_panels_render, case_panels_render
from cases.selectors import (
    case_can_create,
    case_can_write,
    case_get_for_user,
    case_list_for_user,
    labels_active,
    series_list_for_case,
)
from cases.services.case import NOTE_MAX_LENGTH, case_can_archive, case_create, case_update
from cases.services.series import series_delete, series_quarantine_release
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError

PAGE_SIZE = 25
THUMBNAIL_SIZE = 160


def _etiology_choices(empty_label: Any) -> list[tuple[str, Any]]:
    return [("", empty_label)] + [(label.name, label.title) for label in labels_active()]


class CaseFilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Code"), required=False)
    etiology = forms.ChoiceField(label=gettext_lazy("Etiology"), required=False)
    confirmed = forms.ChoiceField(
        label=gettext_lazy("Confirmed"),
        required=False,
        choices=[
            ("", gettext_lazy("Any")),
            ("true", gettext_lazy("Confirmed")),
            ("false", gettext_lazy("Not confirmed")),
        ],
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("Any")), *Case.Status.choices],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        etiology = self.fields["etiology"]
        assert isinstance(etiology, forms.ChoiceField)
        etiology.choices = [*_etiology_choices(_("Any")), ("none", _("Not set"))]


class CaseForm(forms.Form):
    """New case and case edit: the fields the public contract lets a client set."""

    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=64,
        help_text=gettext_lazy("A pseudonym such as SA-0042: never a name."),
    )
    etiology = forms.ChoiceField(label=gettext_lazy("Etiology"), required=False)
    confirmed = forms.BooleanField(label=gettext_lazy("Confirmed"), required=False)
    note = forms.CharField(
        label=gettext_lazy("Note"),
        required=False,
        max_length=NOTE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        etiology = self.fields["etiology"]
        assert isinstance(etiology, forms.ChoiceField)
        etiology.choices = _etiology_choices(_("Not set"))


class CaseUpdateForm(CaseForm):
    """Case edit. No status field: the status follows the workflow (see
    ``cases.services.case``); archiving has its own action (``case_archive_view``)."""


def _form_error(form: forms.Form, error: ApplicationError) -> None:
    field = error.extra.get("field")
    form.add_error(field if field in form.fields else None, error.message)


@login_required
@require_GET
def case_list(request: HttpRequest) -> HttpResponse:
    return _case_list_page(request, CaseForm() if case_can_create(user=request.user) else None)


def _case_list_page(
    request: HttpRequest, create_form: CaseForm | None, status: int = 200
) -> HttpResponse:
    filter_form = CaseFilterForm(request.GET or None)
    filters = filter_form.cleaned_data if filter_form.is_valid() else {}
    paginator = Paginator(case_list_for_user(user=request.user, filters=filters), PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filter_form": filter_form,
        "page": page,
        "cases": page.object_list,
        "query": query.urlencode(),
        "create_form": create_form,
        "list_panels": case_list_panels_render(request),
    }
    return render(request, "cases/list.html", context, status=status)


@login_required
@require_POST
def case_create_view(request: HttpRequest) -> HttpResponse:
    if not case_can_create(user=request.user):
        raise PermissionDenied(_("Your role may not create cases."))
    form = CaseForm(request.POST)
    if form.is_valid():
        try:
            case = case_create(
                user=request_user(request),
                code=form.cleaned_data["code"],
                etiology=form.cleaned_data["etiology"] or None,
                confirmed=form.cleaned_data["confirmed"],
                note=form.cleaned_data["note"],
            )
        except ApplicationError as error:
            _form_error(form, error)
        else:
            messages.success(request, _("Case %(code)s created.") % {"code": case.code})
            return redirect("cases:detail", case_id=case.pk)
    return _case_list_page(request, form, status=400)


def _page_case(request: HttpRequest, case_id: int, *, for_write: bool = False) -> Case:
    try:
        return case_get_for_user(user=request.user, case_id=case_id, for_write=for_write)
    except NotFoundError as error:
        raise Http404(error.message) from error
    except ForbiddenError as error:
        raise PermissionDenied(error.message) from error


def _thumbnail(series: Series) -> str:
    middle = int(series.shape[0]) // 2
    url = reverse("cases-api:series-slice-png", args=[series.pk, middle])
    return f"{url}?size={THUMBNAIL_SIZE}"


@login_required
@require_GET
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    case = _page_case(request, case_id)
    return _case_detail_page(request, case)


def _case_detail_page(
    request: HttpRequest, case: Case, form: CaseUpdateForm | None = None, status: int = 200
) -> HttpResponse:
    can_write = case_can_write(user=request.user, case=case)
    if can_write and form is None:
        form = CaseUpdateForm(
            initial={
                "code": case.code,
                "etiology": case.etiology.name if case.etiology else "",
                "confirmed": case.confirmed,
                "note": case.note,
            }
        )
    manages = has_role(request.user, DATA_MANAGER)
    series = [
        {
            "series": s,
            # A quarantined series may carry patient data in its pixels: only the data
            # manager who decides about it sees the picture.
            "thumbnail": _thumbnail(s) if manages or not s.quarantined else "",
            "middle": int(s.shape[0]) // 2,
        }
        for s in series_list_for_case(case=case)
    ]
    context = {
        "can_release": manages,
        "case": case,
        "series_list": series,
        "can_write": can_write,
        "can_archive": can_write and case_can_archive(user=request.user),
        "form": form if can_write else None,
        "upload_url": reverse("cases:upload", args=[case.pk]),
        "editor_url": reverse("annotation:editor", args=[case.pk]),
        "actions": case_actions_for(request, case),
        "panels": case_panels_render(request, case),
    }
    return render(request, "cases/detail.html", context, status=status)


@login_required
@require_POST
def case_update_view(request: HttpRequest, case_id: int) -> HttpResponse:
    case = _page_case(request, case_id, for_write=True)
    form = CaseUpdateForm(request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        data["etiology"] = data["etiology"] or None
        try:
            case_update(user=request_user(request), case=case, data=data)
        except ApplicationError as error:
            _form_error(form, error)
        else:
            messages.success(request, _("Case saved."))
            return redirect("cases:detail", case_id=case.pk)
    return _case_detail_page(request, case, form, status=400)


@login_required
@require_POST
def case_archive_view(request: HttpRequest, case_id: int) -> HttpResponse:
    """Archives (``archived=1``) or unarchives (``archived=0``) a case; unarchiving
    recomputes its status from its annotations and series."""
    case = _page_case(request, case_id, for_write=True)
    archived = request.POST.get("archived") == "1"
    try:
        case_update(user=request_user(request), case=case, data={"archived": archived})
    except ForbiddenError as error:
        raise PermissionDenied(error.message) from error
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Case archived.") if archived else _("Case unarchived."))
    return redirect("cases:detail", case_id=case.pk)


def _page_series(request: HttpRequest, case: Case, series_id: int) -> Series:
    found = Series.objects.select_related("volume", "case").filter(pk=series_id, case=case).first()
    if found is None:
        raise Http404(_("No such series."))
    return found


@login_required
@require_POST
def series_quarantine_view(request: HttpRequest, case_id: int, series_id: int) -> HttpResponse:
    """A data manager releases (``action=release`` with a ``note``) or deletes
    (``action=delete``) a quarantined series after looking at it."""
    case = _page_case(request, case_id)
    series = _page_series(request, case, series_id)
    action = request.POST.get("action", "")
    try:
        if action == "release":
            series_quarantine_release(
                user=request_user(request), series=series, note=request.POST.get("note", "")
            )
            messages.success(request, _("The series is released and used again."))
        elif action == "delete":
            series_delete(user=request_user(request), series=series)
            messages.success(request, _("The quarantined series is deleted."))
        else:
            messages.error(request, _("Unknown action."))
    except ForbiddenError as error:
        raise PermissionDenied(error.message) from error
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("cases:detail", case_id=case.pk)
