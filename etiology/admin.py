from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from etiology.models import Workup

if TYPE_CHECKING:
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = admin.ModelAdmin


@admin.register(Workup)
class WorkupAdmin(ModelAdminBase):
    list_display = (
        "case",
        "atrial_fibrillation",
        "stenosis_50",
        "vessel_imaging",
        "cardiac_workup",
        "updated_at",
    )
    readonly_fields = ("updated_by", "updated_at")
    search_fields = ("case__code",)
