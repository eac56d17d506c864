"""Admin of the inference app: read-only views of datasets, runs, models, predictions, exports.

Rows here are written by the services only (training registers models, one model is active,
jobs move through their states), so the admin shows them and offers the one safe write,
activating a model version, through its service.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.auth import request_user
from inference.models import (
    DatasetItem,
    DatasetSnapshot,
    ExportJob,
    ModelVersion,
    PredictionJob,
    PredictionSeries,
    TrainingRun,
)
from inference.services.registry import model_activate
from strokeaid_site.errors import ApplicationError

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic; Django's own are not subscriptable at run
    # time, so the parametrised bases exist for the type checker only.
    ModelAdminBase = admin.ModelAdmin[Any]
    TabularInlineBase = admin.TabularInline[Any, Any]
else:
    ModelAdminBase = admin.ModelAdmin
    TabularInlineBase = admin.TabularInline


class ReadOnlyMixin:
    """Viewing only: every change goes through a service (and its audit and checks)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DatasetItemInline(ReadOnlyMixin, TabularInlineBase):
    model = DatasetItem
    extra = 0
    raw_id_fields = ["case"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(ReadOnlyMixin, ModelAdminBase):
    list_display = ["id", "name", "created_at", "created_by"]
    inlines = [DatasetItemInline]


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyMixin, ModelAdminBase):
    list_display = ["id", "status", "progress", "best_epoch", "device", "created_at"]
    list_filter = ["status"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyMixin, ModelAdminBase):
    list_display = ["id", "name", "is_active", "is_demo", "created_at"]
    list_filter = ["is_active", "is_demo"]
    actions = ["activate"]

    @admin.action(description=_("Activate the selected model version"))
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one model version."), messages.ERROR)
            return
        try:
            model = model_activate(user=request_user(request), model=queryset.get())
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(request, _("%(name)s is now active.") % {"name": model.name})


class PredictionSeriesInline(ReadOnlyMixin, TabularInlineBase):
    model = PredictionSeries
    extra = 0
    raw_id_fields = ["series"]


@admin.register(PredictionJob)
class PredictionJobAdmin(ReadOnlyMixin, ModelAdminBase):
    list_display = ["id", "case", "model", "status", "etiology", "confidence", "created_at"]
    list_filter = ["status"]
    inlines = [PredictionSeriesInline]


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyMixin, ModelAdminBase):
    list_display = ["id", "format", "status", "progress", "created_by", "created_at"]
    list_filter = ["status", "format"]
