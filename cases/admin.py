"""Admin for label sets, cases, studies, series, volumes, uploads and the audit trail.

Writes that have a service go through it (case edits keep the audit trail); image data and
the de-identified header are read-only here: they come only from ingestion.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.auth import request_user
from cases.models import AuditEvent, Case, Label, LabelSet, Series, Study, UploadJob, Volume
from cases.services.case import (
    case_code_validate,
    case_create,
    case_delete,
    case_note_validate,
    case_update,
)
from strokeaid_site.errors import ApplicationError

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic; Django's own are not subscriptable at run
    # time, so the parametrised bases exist for the type checker only.
    ModelAdminBase = admin.ModelAdmin[Any]
    TabularInlineBase = admin.TabularInline[Any, Any]
else:
    ModelAdminBase = admin.ModelAdmin
    TabularInlineBase = admin.TabularInline


class LabelInline(TabularInlineBase):
    model = Label
    extra = 0
    fields = ("value", "name", "titles", "color", "description")


@admin.register(LabelSet)
class LabelSetAdmin(ModelAdminBase):
    list_display = ("name", "version", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name",)
    inlines = [LabelInline]


@admin.register(Label)
class LabelAdmin(ModelAdminBase):
    list_display = ("value", "name", "title", "swatch", "label_set")
    list_filter = ("label_set",)
    search_fields = ("name",)

    @admin.display(description=_("colour"))
    def swatch(self, obj: Label) -> str:
        return format_html(
            '<span style="display:inline-block;width:1em;height:1em;background:{}"></span> {}',
            obj.color,
            obj.color,
        )


class SeriesInline(TabularInlineBase):
    model = Series
    extra = 0
    fields = ("kind", "shape", "spacing", "quarantined", "description")
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CaseAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    """The services' own checks as form errors, so a refused case is shown, not a 500."""

    class Meta:
        model = Case
        fields = ("code", "etiology", "confirmed", "note")

    def clean_code(self) -> str:
        return _checked(case_code_validate, self.cleaned_data["code"], "code")

    def clean_note(self) -> str:
        return _checked(case_note_validate, self.cleaned_data.get("note") or "", "note")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("confirmed") and not data.get("etiology"):
            self.add_error("etiology", _("A confirmed case needs an etiology."))
        return data


def _checked(check: Any, value: str, field: str) -> str:
    try:
        return str(check(value))
    except ApplicationError as exc:
        raise forms.ValidationError(exc.message) from exc


@admin.register(Case)
class CaseAdmin(ModelAdminBase):
    list_display = ("code", "etiology", "confirmed", "status", "created_by", "updated_at")
    list_filter = ("status", "confirmed", "etiology")
    search_fields = ("code", "note")
    list_select_related = ("etiology", "created_by")
    # The status follows the workflow (services only); archive from the case page.
    readonly_fields = ("status", "created_by", "created_at", "updated_at")
    inlines = [SeriesInline]
    form = CaseAdminForm

    def save_model(self, request: HttpRequest, obj: Case, form: Any, change: bool) -> None:
        if not change:
            # Through the service like every other way of creating a case (audit event).
            etiology = form.cleaned_data.get("etiology")
            case = case_create(
                user=request_user(request),
                code=form.cleaned_data["code"],
                etiology=etiology.name if etiology else None,
                confirmed=bool(form.cleaned_data.get("confirmed")),
                note=form.cleaned_data.get("note") or "",
            )
            obj.pk = case.pk
            obj.created_by = case.created_by
            obj.created_at = case.created_at
            obj._state.adding = False
            return
        data = {
            name: form.cleaned_data[name]
            for name in ("code", "confirmed", "note")
            if name in form.changed_data
        }
        if "etiology" in form.changed_data:
            etiology = form.cleaned_data["etiology"]
            data["etiology"] = etiology.name if etiology else None
        case = Case.objects.get(pk=obj.pk)
        case_update(user=request_user(request), case=case, data=data)

    def delete_model(self, request: HttpRequest, obj: Case) -> None:
        case_delete(user=request_user(request), case=obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for case in queryset:
            case_delete(user=request_user(request), case=case)


@admin.register(Study)
class StudyAdmin(ModelAdminBase):
    list_display = ("study_uid", "case", "description", "created_at")
    search_fields = ("study_uid", "case__code")
    list_select_related = ("case",)
    readonly_fields = ("case", "study_uid", "created_at")


@admin.register(Series)
class SeriesAdmin(ModelAdminBase):
    list_display = ("id", "case", "kind", "source", "shape_text", "quarantined", "created_at")
    list_filter = ("kind", "source", "quarantined")
    search_fields = ("case__code", "series_uid", "description")
    list_select_related = ("case",)
    # Geometry and the de-identified header come from ingestion and are never edited by hand.
    readonly_fields = (
        "case",
        "study",
        "series_uid",
        "kind",
        "source",
        "shape",
        "spacing",
        "affine",
        "header_pretty",
        "created_at",
    )
    exclude = ("header",)

    @admin.display(description=_("shape"))
    def shape_text(self, obj: Series) -> str:
        return "×".join(str(n) for n in obj.shape)

    @admin.display(description=_("header"))
    def header_pretty(self, obj: Series) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.header, indent=2, sort_keys=True))


@admin.register(Volume)
class VolumeAdmin(ModelAdminBase):
    list_display = ("series", "dtype", "nbytes", "sha256", "created_at")
    search_fields = ("sha256", "key", "series__case__code")
    list_select_related = ("series__case",)
    readonly_fields = [f.name for f in Volume._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(UploadJob)
class UploadJobAdmin(ModelAdminBase):
    list_display = ("id", "case", "status", "progress", "created_by", "created_at", "finished_at")
    list_filter = ("status",)
    search_fields = ("case__code",)
    list_select_related = ("case", "created_by")
    readonly_fields = [f.name for f in UploadJob._meta.fields]


@admin.register(AuditEvent)
class AuditEventAdmin(ModelAdminBase):
    list_display = ("created_at", "actor", "verb", "target_type", "target_id", "case")
    list_filter = ("verb", "target_type")
    search_fields = ("verb", "target_id", "case__code", "actor__username")
    list_select_related = ("actor", "case")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
