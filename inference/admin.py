"""Admin of the inference app: read-mostly views of runs, models and predictions."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from inference.models import DatasetSnapshot, ModelVersion, PredictionJob, TrainingRun

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic; Django's own are not subscriptable at run
    # time, so the parametrised bases exist for the type checker only.
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = admin.ModelAdmin


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(ModelAdminBase):
    list_display = ["id", "name", "created_at", "created_by"]
    readonly_fields = ["filters", "counts", "fractions", "seed", "label_set"]


@admin.register(TrainingRun)
class TrainingRunAdmin(ModelAdminBase):
    list_display = ["id", "status", "progress", "best_epoch", "device", "created_at"]
    list_filter = ["status"]
    readonly_fields = ["history", "metrics", "params", "log", "error", "task_id"]


@admin.register(ModelVersion)
class ModelVersionAdmin(ModelAdminBase):
    list_display = ["id", "name", "is_active", "is_demo", "created_at"]
    list_filter = ["is_active", "is_demo"]
    readonly_fields = ["weights_key", "weights_sha256", "spec", "metrics", "hyperparameters"]


@admin.register(PredictionJob)
class PredictionJobAdmin(ModelAdminBase):
    list_display = ["id", "case", "model", "status", "etiology", "confidence", "created_at"]
    list_filter = ["status"]
    raw_id_fields = ["case", "model", "reference_series"]


from inference.models import ExportJob  # noqa: E402


@admin.register(ExportJob)
class ExportJobAdmin(ModelAdminBase):
    list_display = ["id", "format", "status", "progress", "created_by", "created_at"]
    list_filter = ["status", "format"]
    readonly_fields = ["manifest", "filters", "case_ids", "result_key", "sha256", "error"]
