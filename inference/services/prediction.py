"""Predictions: request (deduplicated, 409 without an active model), execute, read results.

Serving path (the same code the API, the ``predict`` command and the benchmark use):
load volumes from storage (memory-mapped) -> the ML core's Predictor (inference mode,
channels-last batches, ONNX Runtime on CPU when it pays) -> store the label volume and
quantised probability maps + result rows in one storage.transactional block. Loaded
predictors are cached per process by weights checksum, so a worker pays model loading and
the ONNX export once, not per case.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from datetime import timedelta
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.roles import CLINICIAN, DATA_MANAGER, NEUROLOGIST, REVIEWER, user_roles
from cases import storage
from cases.models import Case, Label, Series
from cases.services.audit import audit_record
from core.jobs import job_heartbeat, job_request, jobs_reap_stale
from inference.ml.predictor import ModelLoadError, PredictionOutput, Predictor
from inference.models import JobStatus, ModelVersion, PredictionJob, PredictionSeries
from inference.selectors import model_active_get
from inference.services.arrays import SeriesMissingError, case_volumes_load, same_grid
from inference.services.case_model import case_model_load
from inference.services.reasoning import reasoning_safe
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, ConflictError, ForbiddenError
from strokeaid_site.events import job_event_send

logger = logging.getLogger(__name__)

#: Roles that may request predictions on any visible case; clinicians on their own cases.
PREDICT_ANY_ROLES = frozenset({NEUROLOGIST, REVIEWER, DATA_MANAGER})

_CACHE_SIZE = 2
_cache: OrderedDict[tuple[str, str], Predictor] = OrderedDict()
_cache_lock = threading.Lock()


class ModelWeightsError(ApplicationError):
    """The model's weights are missing or corrupt."""


def prediction_can_request(*, user: User, case: Case) -> bool:
    roles = user_roles(user)
    if roles & PREDICT_ANY_ROLES:
        return True
    return CLINICIAN in roles and case.created_by_id == user.pk


def _no_model_error() -> ConflictError:
    return ConflictError(
        _(
            "No model is active. A data manager must train or activate one "
            "(POST /api/training-runs/ or POST /api/models/{id}/activate/)."
        ),
        {
            "training_runs": reverse("inference-api:training-run-list"),
            "models": reverse("inference-api:model-list"),
        },
    )


def _send(job: PredictionJob) -> None:
    job_event_send(
        "prediction",
        job.pk,
        {"id": job.pk, "status": job.status, "progress": job.progress, "error": job.error or None},
    )


def prediction_request(
    *, user: User, case: Case, model: ModelVersion | None = None, enqueue: bool = True
) -> tuple[PredictionJob, bool]:
    """Queues a prediction of ``case`` with the active model (or ``model``).

    Precondition: ``case`` came from ``case_get_for_user`` (visible to ``user``). A queued or
    running job of the same case and model is returned instead (``created=False``).
    ``enqueue=False`` leaves the job queued for a caller that runs it in the foreground
    (the ``predict`` command).

    Raises:
        ForbiddenError: a clinician asking for someone else's case.
        ConflictError: no model is active (409).
        SeriesMissingError: the case has no DWI or FLAIR series (400).
    """
    if not prediction_can_request(user=user, case=case):
        raise ForbiddenError(_("You may not request predictions for this case."))
    model = model or model_active_get()
    if model is None:
        raise _no_model_error()
    series = list(Series.objects.filter(case=case).select_related("volume"))
    # Fails fast with a clear message instead of queueing a job that cannot succeed.
    reference = _reference_or_error(case, series)
    predictions_reap_stale()
    chosen = model
    target = prediction_target(case_id=case.pk, model_id=chosen.pk)

    def create() -> PredictionJob:
        job = PredictionJob.objects.create(
            case=case, model=chosen, created_by=user, reference_series=reference, target=target
        )
        audit_record(
            actor=user, verb="prediction.request", target=job, case=case, data={"model": chosen.pk}
        )
        return job

    return job_request(
        model=PredictionJob,
        target=target,
        create=create,
        task="inference.tasks.prediction_execute" if enqueue else None,
        group="prediction",
    )


def predictions_reap_stale(*, older_than: timedelta | None = None) -> list[int]:
    """Marks predictions whose worker is gone as interrupted (``core.jobs.jobs_reap_stale``), so
    that a new request for the case does not get a job nobody runs."""
    return jobs_reap_stale(
        model=PredictionJob,
        message=_("The worker stopped before the prediction finished."),
        older_than=older_than,
        notify=_send,
    )


def prediction_target(*, case_id: int, model_id: int) -> str:
    """One active prediction per case and model."""
    return f"case={case_id};model={model_id}"


def _reference_or_error(case: Case, series: list[Series]) -> Series:
    from inference.services.arrays import reference_kind, series_by_kind

    chosen = series_by_kind(series)
    kind = reference_kind(chosen)
    if kind is None:
        raise SeriesMissingError(
            _(
                "Case %(code)s has no DWI or FLAIR series: a prediction needs at least one of "
                "them (lesions are segmented on diffusion or FLAIR images)."
            )
            % {"code": case.code},
            {"case": case.pk, "series_kinds": sorted(chosen)},
        )
    return chosen[kind]


def predictor_for(model: ModelVersion, *, device: str | None = None) -> Predictor:
    """A loaded Predictor for ``model`` (cached per process by weights checksum).

    Raises:
        ModelWeightsError: weights missing, checksum mismatch or unreadable.
    """
    cache_key = (model.weights_key, model.weights_sha256)
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached is not None:
            _cache.move_to_end(cache_key)
            return cached
    if not storage.exists(model.weights_key):
        raise ModelWeightsError(
            _("The weights file of model %(name)s is missing.") % {"name": model.name},
            {"model": model.pk},
        )
    with storage.as_local_file(model.weights_key) as path:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != model.weights_sha256:
            raise ModelWeightsError(
                _(
                    "The weights file of model %(name)s is corrupt (checksum mismatch); "
                    "retrain or activate another model."
                )
                % {"name": model.name},
                {"model": model.pk},
            )
        try:
            predictor = Predictor.load(
                path,
                device=device or app_settings.DEVICE,
                backend="auto",
                keep_probability_maps=True,
            )
        except ModelLoadError as exc:
            raise ModelWeightsError(
                _("The weights of model %(name)s cannot be loaded: %(error)s")
                % {"name": model.name, "error": exc},
                {"model": model.pk},
            ) from exc
    with _cache_lock:
        _cache[cache_key] = predictor
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return predictor


def predictor_cache_clear() -> None:
    with _cache_lock:
        _cache.clear()


def _quantise(maps: Any) -> np.ndarray:
    # 0..255 keeps probability overlays at 0.4 % resolution for a quarter of float32's size.
    quantised: np.ndarray = np.clip(np.rint(np.asarray(maps, dtype=np.float32) * 255.0), 0, 255)
    return quantised.astype(np.uint8)


def prediction_execute(*, job_id: int) -> PredictionJob:
    """Runs job ``job_id`` (worker task or foreground). Failures mark the job failed."""
    claimed = PredictionJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), progress=0.05
    )
    job = PredictionJob.objects.select_related("case", "model").get(pk=job_id)
    if not claimed:
        return job
    _send(job)
    try:
        with job_heartbeat(model=PredictionJob, job_id=job_id):
            output = prediction_run(job=job)
        job.refresh_from_db()
    except Exception as exc:
        message = (
            exc.message
            if isinstance(exc, ApplicationError)
            else (_("Prediction failed: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"})
        )
        logger.exception("prediction %s failed", job_id)
        PredictionJob.objects.filter(pk=job_id).update(
            status=JobStatus.FAILED, error=str(message)[:4000], finished_at=timezone.now()
        )
        job.refresh_from_db()
    else:
        logger.info("prediction %s done in %.2fs", job_id, output.timings.get("total", 0.0))
    _send(job)
    return job


def prediction_run(*, job: PredictionJob) -> PredictionOutput:
    """Predicts and stores the results of ``job`` (all or nothing)."""
    model = job.model
    case = job.case
    series = list(Series.objects.filter(case=case).select_related("volume"))
    vols = case_volumes_load(case=case, series=series)
    predictor = predictor_for(model)
    output = predictor.predict(vols.volumes, vols.spacing)
    names = dict(Label.objects.filter(label_set=model.label_set).values_list("value", "name"))
    reasoning = reasoning_safe(
        case=case,
        output=output,
        reference=vols.reference,
        image=vols.volumes.get(vols.reference.kind),
        label_names=names,
        case_model=case_model_load(model.case_model_key, model.case_model_sha256),
    )
    prediction_store(
        job=job,
        output=output,
        reference=vols.reference,
        series=series,
        resampled=vols.resampled,
        reasoning=reasoning,
    )
    return output


def prediction_store(
    *,
    job: PredictionJob,
    output: PredictionOutput,
    reference: Series,
    series: list[Series],
    resampled: list[str] | None = None,
    reasoning: dict[str, Any] | None = None,
) -> PredictionJob:
    """Writes the label volume, probability maps and result rows of a finished prediction."""
    labels = {lab.value: lab for lab in Label.objects.filter(label_set=job.model.label_set)}
    name = {v: (labels[v].name if v in labels else str(v)) for v in output.probabilities}
    on_grid = [s for s in series if s.kind != "CT" and same_grid(s, reference)]
    # Notes are stored in English (the API's data) and translated when shown
    # (``prediction_notes_display``): the worker has no user language.
    notes = list(output.notes)
    if resampled:
        notes.append(
            gettext_noop("Resampled onto the %(reference)s grid: %(kinds)s.")
            % {"reference": reference.kind, "kinds": ", ".join(resampled)}
        )
    with storage.transactional():
        labels_key, _sha, _n = storage.write_array(
            storage.prediction_key(prediction_id=job.pk, series_id=reference.pk, name="labels.npy"),
            np.ascontiguousarray(output.label_volume, dtype=np.uint8),
        )
        probs_key = ""
        if output.probability_maps is not None:
            probs_key, _sha, _n = storage.write_array(
                storage.prediction_key(
                    prediction_id=job.pk, series_id=reference.pk, name="probabilities.npy"
                ),
                _quantise(output.probability_maps),
            )
        PredictionSeries.objects.bulk_create(
            [
                PredictionSeries(
                    job=job,
                    series=s,
                    labels_key=labels_key,
                    probabilities_key=probs_key,
                    shape=[int(n) for n in output.label_volume.shape],
                )
                for s in on_grid
            ]
        )
        etiology = labels.get(output.etiology) if output.etiology is not None else None
        confidence = float(output.confidence) if etiology is not None else None
        probabilities = {name[v]: float(p) for v, p in output.probabilities.items()}
        combined = (reasoning or {}).get("methods", {}).get("combined")
        if combined:
            # The headline is the learned case-level answer when a case model is active.
            by_name = {lab.name: lab for lab in labels.values()}
            etiology = by_name.get(combined["etiology"], etiology)
            confidence = float(combined["confidence"])
            probabilities = {k: float(v) for k, v in combined["probabilities"].items()}
        PredictionJob.objects.filter(pk=job.pk).update(
            status=JobStatus.DONE,
            progress=1.0,
            reference_series=reference,
            etiology=etiology,
            confidence=confidence,
            probabilities=probabilities,
            volumes_ml={
                name.get(v, str(v)): round(float(ml), 4)
                for v, ml in output.lesion_volume_ml.items()
            },
            lesions={
                "count": output.n_lesions,
                "total_ml": round(float(output.total_lesion_volume_ml), 4),
                "removed_small": output.removed_components,
                "flags": list(output.flags),
                "brain_ml": (
                    round(float(output.brain_volume_ml), 2)
                    if output.brain_volume_ml is not None
                    else None
                ),
                "items": [
                    {
                        "index": les.index,
                        "label": name.get(les.label, str(les.label)),
                        "voxels": les.voxels,
                        "volume_ml": round(les.volume_ml, 4),
                        "centroid": [round(c, 2) for c in les.centroid],
                        "bbox": list(les.bbox),
                    }
                    for les in output.lesions
                ],
            },
            notes=notes,
            timings={k: round(v, 4) for k, v in output.timings.items()},
            reasoning=reasoning or {},
            finished_at=timezone.now(),
        )
    return job


#: Known notes (from the ML core's predictor and from ``prediction_store``) -> their
#: translatable text; the named groups fill the placeholders.
_NOTE_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"^Series missing: (?P<kinds>.+); predicted from the others\.$"),
        gettext_noop("Series missing: %(kinds)s; predicted from the others."),
    ),
    (
        re.compile(r"^No lesion found: no etiology can be inferred from the images\.$"),
        gettext_noop("No lesion found: no etiology can be inferred from the images."),
    ),
    (
        re.compile(
            r"^Implausible result: the predicted lesion covers (?P<percent>\d+) % of the brain\. "
            r"The model failed on this study \(unfamiliar acquisition, artefact or noise\); no "
            r"etiology is given\.$"
        ),
        gettext_noop(
            "Implausible result: the predicted lesion covers %(percent)s %% of the brain. The "
            "model failed on this study (unfamiliar acquisition, artefact or noise); no "
            "etiology is given."
        ),
    ),
    (
        re.compile(
            r"^No head found in the images \(noise or a blank volume\): nothing to predict\.$"
        ),
        gettext_noop("No head found in the images (noise or a blank volume): nothing to predict."),
    ),
    (
        re.compile(r"^Resampled onto the (?P<reference>\S+) grid: (?P<kinds>.+)\.$"),
        gettext_noop("Resampled onto the %(reference)s grid: %(kinds)s."),
    ),
]


def prediction_notes_display(notes: list[str] | None) -> list[str]:
    """The notes of a prediction in the active language (unknown notes stay as stored)."""
    shown = []
    for note in notes or []:
        text = str(note)
        for pattern, message in _NOTE_PATTERNS:
            match = pattern.match(text)
            if match is not None:
                text = _(message) % match.groupdict() if match.groupdict() else _(message)
                break
        shown.append(text)
    return shown


def prediction_label_volume(*, job: PredictionJob) -> np.ndarray:
    """The stored uint8 (z, y, x) label volume of a done job."""
    # Without a reference series the filter is ``IS NULL`` (no row), so the first output is used;
    # the Django plugin rejects None in an ``=`` lookup although Django accepts it.
    out = (
        job.outputs.filter(series_id=job.reference_series_id).first()  # type: ignore[misc]
        or job.outputs.first()
    )
    if out is None:
        raise ApplicationError(_("This prediction has no stored result."), {"prediction": job.pk})
    return storage.read_array(out.labels_key)
