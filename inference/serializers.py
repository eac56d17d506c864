"""Output/input serializers of the inference REST API (thin: no writes happen here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from inference.models import DatasetSnapshot, ModelVersion, PredictionJob, TrainingRun
from inference.services.reasoning import reasoning_display

if TYPE_CHECKING:
    from cases.models import Case, Series


class DatasetOutputSerializer(serializers.ModelSerializer[DatasetSnapshot]):
    class Meta:
        model = DatasetSnapshot
        fields = ["id", "name", "filters", "seed", "fractions", "counts", "created_at"]


class TrainingRunOutputSerializer(serializers.ModelSerializer[TrainingRun]):
    model = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    dataset = DatasetOutputSerializer(read_only=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "progress",
            "metrics",
            "model",
            "error",
            "best_epoch",
            "history",
            "params",
            "dataset",
            "device",
            "is_demo",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_model(self, run: TrainingRun) -> int | None:
        version = getattr(run, "model_version", None)
        return version.pk if version is not None else None

    def get_error(self, run: TrainingRun) -> str | None:
        return run.error or None


class TrainingRunListSerializer(TrainingRunOutputSerializer):
    class Meta(TrainingRunOutputSerializer.Meta):
        fields = [f for f in TrainingRunOutputSerializer.Meta.fields if f not in {"history"}]


class ModelOutputSerializer(serializers.ModelSerializer[ModelVersion]):
    run: serializers.PrimaryKeyRelatedField[TrainingRun] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    dataset: serializers.PrimaryKeyRelatedField[DatasetSnapshot] = (
        serializers.PrimaryKeyRelatedField(read_only=True)
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "is_active",
            "is_demo",
            "usable",
            "unusable_reason",
            "metrics",
            "spec",
            "hyperparameters",
            "training_seconds",
            "code_version",
            "run",
            "dataset",
            "weights_sha256",
            "weights_bytes",
            "created_at",
            "activated_at",
        ]


class PredictionOutputSerializer(serializers.ModelSerializer[PredictionJob]):
    etiology = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    flags = serializers.SerializerMethodField()
    pattern = serializers.SerializerMethodField()
    methods = serializers.SerializerMethodField()
    workup_used = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField()
    case: serializers.PrimaryKeyRelatedField[Case] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    model: serializers.PrimaryKeyRelatedField[ModelVersion] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    reference_series: serializers.PrimaryKeyRelatedField[Series] = (
        serializers.PrimaryKeyRelatedField(read_only=True)
    )

    class Meta:
        model = PredictionJob
        fields = [
            "id",
            "status",
            "progress",
            "etiology",
            "confidence",
            "probabilities",
            "error",
            "lesions",
            "volumes_ml",
            "notes",
            "flags",
            "pattern",
            "methods",
            "workup_used",
            "checks",
            "case",
            "model",
            "reference_series",
            "created_at",
            "finished_at",
        ]

    def get_etiology(self, job: PredictionJob) -> str | None:
        return job.etiology.name if job.etiology is not None else None

    def get_error(self, job: PredictionJob) -> str | None:
        return job.error or None

    def get_flags(self, job: PredictionJob) -> list[str]:
        """Warnings that make the result "not an answer" (``implausible_lesion_volume``)."""
        return list((job.lesions or {}).get("flags") or [])

    def _reasoning(self, job: PredictionJob) -> dict[str, Any]:
        context: dict[str, Any] = self.context  # type: ignore[assignment]  # DRF passes a dict
        cache: dict[int, dict[str, Any]] = context.setdefault("_reasoning", {})
        if job.pk not in cache:
            case = job.case if self.context.get("with_checks") else None
            cache[job.pk] = reasoning_display(reasoning=job.reasoning, case=case)
        return cache[job.pk]

    def get_pattern(self, job: PredictionJob) -> dict[str, Any] | None:
        """The predicted mask's lesion pattern (count, volumes, sides, territories, ...)."""
        return self._reasoning(job).get("pattern")

    def get_methods(self, job: PredictionJob) -> dict[str, Any] | None:
        """Each way of naming the etiology: ``segmentation_vote``, ``toast_rules``
        (``combined`` when a case-level model answered)."""
        return self._reasoning(job).get("methods")

    def get_workup_used(self, job: PredictionJob) -> dict[str, Any] | None:
        """The work-up the answer saw."""
        return self._reasoning(job).get("workup_used")

    def get_checks(self, job: PredictionJob) -> list[dict[str, Any]]:
        """The case's consistency checks (as ``GET /api/cases/{id}/checks/``; on
        ``GET /api/predictions/{id}/``, empty in lists)."""
        return list(self._reasoning(job).get("checks") or [])


class TrainingRunStartInputSerializer(serializers.Serializer[Any]):
    """``{"epochs": n, "cases": [ids] | null, ...extra hyper-parameters}``."""

    epochs = serializers.IntegerField(min_value=1, max_value=10000)
    cases = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        allow_null=True,
        required=False,
        allow_empty=False,
    )
    filters = serializers.DictField(required=False)
    activate = serializers.BooleanField(required=False, default=False)

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        known = set(self.fields)
        # Every other key is a hyper-parameter, validated by the service.
        value["params"] = {k: v for k, v in dict(data).items() if k not in known}
        return value


class ModelActivateInputSerializer(serializers.Serializer[Any]):
    """``{"override_reason": "..."}``: needed only to activate a model that is worse than the
    active one on their shared held-out cases (the 409 answer carries the comparison)."""

    override_reason = serializers.CharField(
        required=False, allow_blank=True, max_length=1000, default=""
    )
