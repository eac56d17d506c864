"""Reads of the inference app with their permission rules.

* Training runs and dataset snapshots: data managers, neurologists and reviewers read;
  only data managers start runs and activate models.
* Model versions: every user with a role reads the list (clinicians see which model
  answered them).
* Predictions: visible with their case (``cases.selectors.case_visible_queryset``).

Unknown and invisible objects are the same 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER, user_roles
from cases import storage
from cases.models import Case, Label, Series
from cases.selectors import case_visible_queryset
from inference.models import (
    DatasetSnapshot,
    JobStatus,
    ModelVersion,
    PredictionJob,
    PredictionSeries,
    TrainingRun,
)
from strokeaid_site.errors import ApplicationError, NotFoundError

User = AbstractBaseUser | AnonymousUser

#: Roles that read training runs and datasets.
TRAINING_READ_ROLES = frozenset({DATA_MANAGER, NEUROLOGIST, REVIEWER})


def case_ids_resolve(*, user: User, text: str) -> list[int] | None:
    """Case ids of a form's "cases" field: codes (as shown in the case list) or ids.

    Tokens are separated by spaces, commas or semicolons; an empty field gives None (the
    default dataset). A token matching a case code wins over the same digits read as an id,
    since codes are what users see. Only cases visible to ``user`` resolve.

    Raises:
        ApplicationError: some tokens name no visible case (listed in the message).
    """
    tokens = list(dict.fromkeys(text.replace(",", " ").replace(";", " ").split()))
    if not tokens:
        return None
    visible = case_visible_queryset(user=user)
    # Codes are matched case-insensitively: "qa-01" typed for "QA-01" is the same case.
    by_code = {
        code.lower(): pk
        for pk, code in visible.annotate(code_lower=Lower("code"))
        .filter(code_lower__in=[t.lower() for t in tokens])
        .values_list("pk", "code")
    }
    digits = [int(t) for t in tokens if t.lower() not in by_code and t.isdigit()]
    by_id = set(visible.filter(pk__in=digits).values_list("pk", flat=True)) if digits else set()
    ids: list[int] = []
    unknown: list[str] = []
    for t in tokens:
        if t.lower() in by_code:
            ids.append(by_code[t.lower()])
        elif t.isdigit() and int(t) in by_id:
            ids.append(int(t))
        else:
            unknown.append(t)
    if unknown:
        raise ApplicationError(
            _("Unknown cases: %(codes)s. Enter case codes as shown in the case list.")
            % {"codes": ", ".join(unknown)},
            {"unknown": unknown},
        )
    return list(dict.fromkeys(ids))


def training_run_list_for_user(*, user: User) -> QuerySet[TrainingRun]:
    if not user_roles(user) & TRAINING_READ_ROLES:
        return TrainingRun.objects.none()
    return TrainingRun.objects.select_related("dataset", "created_by", "model_version").order_by(
        "-created_at", "-id"
    )


def training_run_get_for_user(*, user: User, run_id: int) -> TrainingRun:
    run = training_run_list_for_user(user=user).filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(_("Training run not found."), {"training_run": run_id})
    return run


def training_run_can_view(user: Any, run_id: int) -> bool:
    """Websocket access check for ``ws/jobs/training/<id>/``."""
    return training_run_list_for_user(user=user).filter(pk=run_id).exists()


def dataset_list_for_user(*, user: User) -> QuerySet[DatasetSnapshot]:
    if not user_roles(user) & TRAINING_READ_ROLES:
        return DatasetSnapshot.objects.none()
    return DatasetSnapshot.objects.select_related("label_set", "created_by")


def dataset_get_for_user(*, user: User, dataset_id: int) -> DatasetSnapshot:
    ds = dataset_list_for_user(user=user).filter(pk=dataset_id).first()
    if ds is None:
        raise NotFoundError(_("Dataset not found."), {"dataset": dataset_id})
    return ds


def model_list_for_user(*, user: User) -> QuerySet[ModelVersion]:
    if not user_roles(user):
        return ModelVersion.objects.none()
    return ModelVersion.objects.select_related("run", "dataset", "label_set").order_by(
        "-is_active", "-created_at", "-id"
    )


def model_get_for_user(*, user: User, model_id: int) -> ModelVersion:
    model = model_list_for_user(user=user).filter(pk=model_id).first()
    if model is None:
        raise NotFoundError(_("Model not found."), {"model": model_id})
    return model


def _prediction_qs(*, user: User) -> QuerySet[PredictionJob]:
    return PredictionJob.objects.filter(case__in=case_visible_queryset(user=user)).select_related(
        "case", "model", "etiology", "reference_series"
    )


def prediction_get_for_user(*, user: User, prediction_id: int) -> PredictionJob:
    job = _prediction_qs(user=user).filter(pk=prediction_id).first()
    if job is None:
        raise NotFoundError(_("Prediction not found."), {"prediction": prediction_id})
    return job


def prediction_list_for_case(*, user: User, case_id: int) -> QuerySet[PredictionJob]:
    return _prediction_qs(user=user).filter(case_id=case_id).order_by("-created_at", "-id")


def prediction_can_view(user: Any, job_id: int) -> bool:
    """Websocket access check for ``ws/jobs/prediction/<id>/``."""
    return _prediction_qs(user=user).filter(pk=job_id).exists()


def prediction_latest_for_series(*, series: Series) -> PredictionSeries | None:
    """The newest done prediction output of ``series`` (caller checked the series' access)."""
    return (
        PredictionSeries.objects.filter(series=series, job__status=JobStatus.DONE)
        .select_related("job", "job__model", "job__etiology")
        .order_by("-job__finished_at", "-job_id")
        .first()
    )


def prediction_overlay(*, series: Series, user: Any) -> dict[str, Any] | None:
    """The editor's overlay of ``series`` when a finished prediction exists, else None:
    the label volume's URL and the answer shown beside it (etiology, confidence and every
    class's probability).

    Registered with ``annotation.hooks``; the editor has already checked the series' access.
    """
    output = prediction_latest_for_series(series=series)
    if output is None:
        return None
    job = output.job
    labels = {lab.name: lab for lab in Label.objects.filter(label_set_id=job.model.label_set_id)}
    etiology = job.etiology
    probabilities = [
        {
            "title": labels[name].title if name in labels else name,
            "color": labels[name].color if name in labels else "#888888",
            "p": round(float(p), 4),
        }
        for name, p in sorted((job.probabilities or {}).items(), key=lambda kv: -float(kv[1]))
    ]
    return {
        "url": reverse("inference-api:series-prediction-raw", args=[series.pk]),
        "summary": {
            "id": job.pk,
            "etiology": etiology.title if etiology else None,
            "color": etiology.color if etiology else None,
            "confidence": job.confidence,
            "probabilities": probabilities,
            "report_url": reverse("inference:prediction-report", args=[job.pk]),
        },
    }


def prediction_file_prefixes(case: Case) -> list[str]:
    """Storage prefixes of every prediction of ``case`` (deleted with the case)."""
    ids = PredictionJob.objects.filter(case=case).values_list("pk", flat=True)
    return [storage.prediction_prefix(prediction_id=pk) for pk in ids]


def prediction_keys_referenced() -> list[str]:
    """Label volumes and probability maps of stored predictions (kept by the orphan sweep)."""
    keys = PredictionSeries.objects.values_list("labels_key", "probabilities_key")
    return [key for pair in keys for key in pair if key]


def model_keys_referenced() -> list[str]:
    """Registered weights and what is derived from them (cached ONNX exports beside them)."""
    return [f"{key}*" for key in ModelVersion.objects.values_list("weights_key", flat=True)]


def model_active_get() -> ModelVersion | None:
    """The active model version, or None."""
    return ModelVersion.objects.filter(is_active=True).select_related("label_set").first()


def prediction_outputs_for_series(*, series: Series, limit: int = 20) -> list[PredictionSeries]:
    """The finished predictions of ``series``, newest first (caller checked access)."""
    return list(
        PredictionSeries.objects.filter(series=series, job__status=JobStatus.DONE)
        .select_related("job__model")
        .order_by("-job__finished_at", "-job_id")[:limit]
    )


def label_colors(*, label_set: Any) -> dict[str, str]:
    """``label name -> colour`` of a model's label set (plots, legends)."""
    return dict(Label.objects.filter(label_set=label_set).values_list("name", "color"))


def labels_by_set_and_name(jobs: list[PredictionJob]) -> dict[tuple[int, str], Label]:
    """The labels of the jobs' models by (label set, name), in one query."""
    if not jobs:
        return {}
    set_ids = {job.model.label_set_id for job in jobs}
    return {
        (lab.label_set_id, lab.name): lab
        for lab in Label.objects.filter(label_set_id__in=set_ids).order_by("value")
    }
