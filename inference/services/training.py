"""Training runs: start (deduplicated, queued on the training cluster), execute, reap stale.

A run's life: ``training_run_start`` freezes a dataset snapshot and queues the run after
commit; the training worker calls ``training_run_execute`` which trains with the ML core,
streams progress, and registers the best epoch as a ModelVersion *inside one
storage.transactional block together with the run's final status*, so a failed or killed
run never leaves a half-registered model (no row, no weights file).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, has_role
from cases import storage
from cases.models import Label
from cases.services.audit import audit_record
from core.jobs import job_heartbeat, job_request, jobs_reap_stale
from inference.ml.predictor import Predictor
from inference.ml.trainer import (
    EpochReport,
    TrainConfig,
    spec_from_config,
    train,
    unusable_reason,
)
from inference.models import ACTIVE_STATES, DatasetSnapshot, JobStatus, TrainingRun
from inference.services.case_model import case_model_fit, case_model_store
from inference.services.dataset import dataset_case_arrays, dataset_snapshot_create
from inference.services.registry import model_activate, model_version_register
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, ForbiddenError
from strokeaid_site.events import job_event_send

logger = logging.getLogger(__name__)

#: Architecture parameters accepted beside the TrainConfig fields.
SPEC_PARAMS = ("encoder_depth", "decoder_channels")
#: Dataset parameters accepted beside them (and ``case_model``: false skips the
#: case-level etiology model).
DATASET_PARAMS = ("split_seed", "fractions", "case_model")
#: Every run has this target: one run trains at a time.
TRAINING_TARGET = "training"


def _config_fields() -> set[str]:
    return set(TrainConfig.__dataclass_fields__)


def training_params_validate(params: dict[str, Any]) -> dict[str, Any]:
    """Checks hyper-parameters (TrainConfig fields + architecture/dataset extras).

    Raises:
        ApplicationError: unknown or invalid parameters (400).
    """
    allowed = _config_fields() | set(SPEC_PARAMS) | set(DATASET_PARAMS)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ApplicationError(
            _("Unknown training parameters: %(names)s.") % {"names": ", ".join(unknown)},
            {"unknown": unknown, "allowed": sorted(allowed)},
        )
    try:
        config = TrainConfig.from_dict({k: v for k, v in params.items() if k in _config_fields()})
        if config.epochs < 1 or config.batch_size < 2:
            raise ValueError("epochs must be >= 1 and batch_size >= 2")
        depth = int(params.get("encoder_depth", 5))
        decoder = params.get("decoder_channels")
        if decoder is not None and len(decoder) != depth:
            raise ValueError("decoder_channels needs one width per encoder stage")
        _spec_for(config, params, [1], ["x"])
    except (TypeError, ValueError) as exc:
        raise ApplicationError(
            _("Invalid training parameters: %(error)s") % {"error": exc}, {"params": params}
        ) from exc
    return params


def _spec_for(
    config: TrainConfig, params: dict[str, Any], values: Sequence[int], names: Sequence[str]
) -> Any:
    depth = int(params.get("encoder_depth", 5))
    decoder = params.get("decoder_channels") or (256, 128, 64, 32, 16)[:depth]
    return spec_from_config(
        config,
        label_values=values,
        label_names=names,
        encoder_depth=depth,
        decoder_channels=tuple(int(c) for c in decoder),
    )


def _send(run: TrainingRun, **extra: Any) -> None:
    payload = {
        "id": run.pk,
        "status": run.status,
        "progress": run.progress,
        "error": run.error or None,
        **extra,
    }
    job_event_send("training", run.pk, payload)


def training_run_running() -> TrainingRun | None:
    return TrainingRun.objects.filter(status__in=ACTIVE_STATES).order_by("created_at").first()


#: Fewer validation cases than this and every model number is flagged as untrustworthy.
MIN_VALIDATION_CASES = 5


def training_run_start(
    *,
    user: User | None,
    epochs: int,
    case_ids: list[int] | None = None,
    params: dict[str, Any] | None = None,
    filters: dict[str, Any] | None = None,
    activate: bool = False,
    is_demo: bool = False,
    enqueue: bool = True,
) -> tuple[TrainingRun, bool]:
    """Creates a training run on a new dataset snapshot and queues it on the training cluster.

    ``case_ids=None``: every confirmed case with approved masks (narrowed by ``filters``);
    explicit ids: the data manager's choice, the latest mask revision of each case whatever
    its review state. Only one run trains at a time: while one is queued or running it is
    returned instead (``created=False``). ``enqueue=False`` leaves the run queued for a
    caller that executes it in the foreground (the ``train`` command).

    Raises:
        ForbiddenError: the user is not a data manager.
        ApplicationError: bad parameters or no usable case.
    """
    if user is not None and not has_role(user, DATA_MANAGER):
        raise ForbiddenError(_("Only data managers may start training runs."))
    params = dict(params or {})
    params["epochs"] = int(epochs)
    training_params_validate(params)
    # A crashed worker must not block training forever.
    training_runs_reap_stale()

    def create() -> TrainingRun:
        dataset = dataset_snapshot_create(
            user=user,
            case_ids=case_ids,
            filters=filters,
            seed=int(params.get("split_seed", 0)),
            fractions=tuple(params.get("fractions", (0.7, 0.15, 0.15))),
        )
        run = TrainingRun.objects.create(
            dataset=dataset,
            params=params,
            created_by=user if user is not None and user.is_authenticated else None,
            activate=activate,
            is_demo=is_demo,
            target=TRAINING_TARGET,
        )
        audit_record(
            actor=user,
            verb="training.start",
            target=run,
            data={"dataset": dataset.pk, "params": params},
        )
        return run

    return job_request(
        model=TrainingRun,
        target=TRAINING_TARGET,
        create=create,
        task="inference.tasks.training_run_execute" if enqueue else None,
        group="training",
        cluster=settings.TRAINING_QUEUE,
    )


def training_runs_reap_stale(*, stale_after: timedelta | None = None) -> list[int]:
    """Marks runs whose training worker is gone as interrupted (``core.jobs.jobs_reap_stale``:
    a heartbeat silent for ``stale_after``, default four heartbeat intervals, or a task django-q
    recorded as finished). Returns the reaped ids."""
    return jobs_reap_stale(
        model=TrainingRun,
        message=_("The training worker stopped before the run finished."),
        older_than=stale_after,
        notify=_send,
    )


def _metrics_from(raw: dict[str, float], labels: dict[int, str]) -> dict[str, Any]:
    """Trainer metric keys -> the stored/API shape (Dice keyed by label name)."""
    out: dict[str, Any] = {"dice": {}}
    for key, value in raw.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            continue
        if key.startswith("dice_") and key[5:].isdigit():
            out["dice"][labels.get(int(key[5:]), key[5:])] = float(value)
        else:
            out[key] = float(value)
    return out


def _user_language(user: Any) -> str:
    """The interface language ``user`` chose (the log is written in it), else the default."""
    from django.conf import settings

    profile = getattr(user, "profile", None) if user is not None else None
    return (getattr(profile, "language", "") or "") or str(settings.LANGUAGE_CODE)


def training_run_execute(
    *,
    run_id: int,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> TrainingRun:
    """Trains run ``run_id`` and registers its best epoch (worker or foreground command).

    Only a queued run is started (a re-delivered task for a finished run does nothing).
    Any failure marks the run failed with the error; nothing is registered then.
    """
    claimed = TrainingRun.objects.filter(pk=run_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )
    run = TrainingRun.objects.select_related("dataset", "created_by").get(pk=run_id)
    if not claimed:
        logger.info("training run %s is %s; not starting it again", run_id, run.status)
        return run
    log: list[str] = []

    def note(line: str) -> None:
        log.append(f"{timezone.now():%H:%M:%S} {line}")
        TrainingRun.objects.filter(pk=run_id).update(log="\n".join(log))

    _send(run)
    try:
        # The log reads in the language of whoever started the run (a worker has none).
        with (
            translation.override(_user_language(run.created_by)),
            job_heartbeat(model=TrainingRun, job_id=run_id),
        ):
            return _train_and_register(run, note, on_epoch=on_epoch, on_progress=on_progress)
    except BaseException as exc:
        # Also on KeyboardInterrupt (foreground command): the row must not stay "running".
        interrupted = not isinstance(exc, Exception)
        message = str(exc) if isinstance(exc, ApplicationError) else f"{type(exc).__name__}: {exc}"
        note(traceback.format_exc(limit=8))
        TrainingRun.objects.filter(pk=run_id).update(
            status=JobStatus.INTERRUPTED if interrupted else JobStatus.FAILED,
            error=message[:4000],
            finished_at=timezone.now(),
        )
        run.refresh_from_db()
        _send(run)
        logger.exception("training run %s failed", run_id)
        if interrupted:
            raise
        return run


def _train_and_register(
    run: TrainingRun,
    note: Callable[[str], None],
    *,
    on_epoch: Callable[[EpochReport], None] | None,
    on_progress: Callable[[float], None] | None,
) -> TrainingRun:
    started = time.perf_counter()
    params = dict(run.params)
    config = TrainConfig.from_dict(
        {
            "device": app_settings.DEVICE,
            **{k: v for k, v in params.items() if k in _config_fields()},
        }
    )
    dataset: DatasetSnapshot = run.dataset
    labels = list(Label.objects.filter(label_set=dataset.label_set).order_by("value"))
    names = {lab.value: lab.name for lab in labels}
    spec = _spec_for(config, params, [lab.value for lab in labels], [lab.name for lab in labels])
    note(_("Loading dataset %(id)s") % {"id": dataset.pk})
    train_cases = dataset_case_arrays(snapshot=dataset, split="train")
    val_cases = dataset_case_arrays(snapshot=dataset, split="val")
    if not train_cases:
        raise ApplicationError(_("The dataset has no training case."), {"dataset": dataset.pk})
    note(
        _("Training on %(train)d cases, validating on %(val)d, device %(device)s")
        % {"train": len(train_cases), "val": len(val_cases), "device": config.device}
    )
    history: list[dict[str, Any]] = []

    def epoch_done(report: EpochReport) -> None:
        entry = report.to_dict()
        entry["metrics"] = _metrics_from(report.metrics, names)
        history.append(entry)
        progress = min(0.99, report.steps / max(1, report.planned_steps))
        fields: dict[str, Any] = {
            "history": history,
            "progress": progress,
            "heartbeat_at": timezone.now(),
        }
        if report.is_best:
            fields.update(metrics=entry["metrics"], best_epoch=report.epoch)
        TrainingRun.objects.filter(pk=run.pk).update(**fields)
        run.progress = progress
        note(
            f"epoch {report.epoch}: loss {report.train_loss:.4f}"
            + (f" score {report.score:.4f}" if report.score == report.score else "")
            + (" *" if report.is_best else "")
        )
        _send(run, epoch=report.epoch, history_entry=entry)
        if on_epoch is not None:
            on_epoch(report)

    def progress(value: float) -> None:
        value = min(0.99, float(value))
        TrainingRun.objects.filter(pk=run.pk).update(progress=value, heartbeat_at=timezone.now())
        run.progress = value
        _send(run)
        if on_progress is not None:
            on_progress(value)

    def should_stop() -> bool:
        # Someone (the reaper, an admin) moved the row on: stop after this step.
        status = TrainingRun.objects.filter(pk=run.pk).values_list("status", flat=True).first()
        return status != JobStatus.RUNNING

    with tempfile.TemporaryDirectory(prefix=f"strokeaid-run{run.pk}-") as tmp:
        checkpoint = Path(tmp) / "best.pt"
        result = train(
            train_cases=train_cases,
            val_cases=val_cases,
            spec=spec,
            config=config,
            on_epoch=epoch_done,
            on_progress=progress,
            should_stop=should_stop,
            checkpoint_path=checkpoint,
        )
        if result.cancelled:
            raise ApplicationError(_("The training run was stopped."), {"run": run.pk})
        if result.checkpoint_path is None or not checkpoint.is_file():
            raise ApplicationError(_("Training produced no checkpoint."), {"run": run.pk})
        metrics = _metrics_from(result.best_metrics, names)
        # Every number rests on the validation cases: say how many.
        metrics["n_train"] = len(train_cases)
        metrics["n_val"] = len(val_cases)
        metrics["best_epoch"] = result.best_epoch
        metrics["stopped_early"] = result.stopped_early
        metrics["steps"] = result.steps
        metrics["planned_steps"] = result.planned_steps
        metrics["min_steps"] = config.min_steps
        metrics["undertrained"] = result.undertrained
        metrics["budget_exhausted"] = result.budget_exhausted
        case_model = None
        if params.get("case_model", True) is not False and not unusable_reason(result.best_metrics):
            note(_("Fitting the case-level etiology model"))
            case_model = case_model_fit(
                fit_cases=[*train_cases, *val_cases],
                test_cases=dataset_case_arrays(snapshot=dataset, split="test"),
                predictor=Predictor(result.model, spec, result.device, backend="eager"),
                names=names,
                note=note,
            )
            if case_model is not None:
                metrics["case_model"] = case_model.metrics
        reason = unusable_reason(result.best_metrics) or ""
        metrics["unusable_reason"] = reason or None
        if result.undertrained:
            note(
                _(
                    "Only %(steps)d of the %(needed)d training steps a usable model needs "
                    "were taken."
                )
                % {"steps": result.steps, "needed": config.min_steps}
            )
        if reason:
            note(_("The model is registered as unusable (%(reason)s).") % {"reason": reason})
        if len(val_cases) < MIN_VALIDATION_CASES:
            note(
                _(
                    "Warning: only %(n)d validation cases; the model's numbers rest on too few "
                    "cases to be trusted (%(min)d or more are needed)."
                )
                % {"n": len(val_cases), "min": MIN_VALIDATION_CASES}
            )
        seconds = time.perf_counter() - started
        label = _("demo") if run.is_demo else _("run %(id)s") % {"id": run.pk}
        name = f"U-Net {spec.encoder} · {label} · {timezone.now():%Y-%m-%d %H:%M}"
        with storage.transactional():
            case_model_key = case_model_sha = ""
            if case_model is not None:
                case_model_key, case_model_sha = case_model_store(case_model, run_id=run.pk)
            version = model_version_register(
                name=name,
                checkpoint_file=checkpoint,
                spec=spec.to_dict(),
                label_set=dataset.label_set,
                run=run,
                dataset=dataset,
                hyperparameters={
                    **config.to_dict(),
                    **{k: params[k] for k in params if k in SPEC_PARAMS},
                },
                metrics=metrics,
                training_seconds=seconds,
                is_demo=run.is_demo,
                activate=run.activate,
                user=run.created_by,
                unusable_reason=reason,
                case_model_key=case_model_key,
                case_model_sha256=case_model_sha,
                case_model=case_model.describe() if case_model is not None else {},
            )
            TrainingRun.objects.filter(pk=run.pk).update(
                status=JobStatus.DONE,
                progress=1.0,
                metrics=metrics,
                best_epoch=result.best_epoch,
                device=result.device,
                finished_at=timezone.now(),
                heartbeat_at=timezone.now(),
            )
            note(_("Registered model %(id)s") % {"id": version.pk})
        if run.activate and version.usable and not version.is_active:
            # Another model is active: the new one replaces it only if it is not worse on
            # the cases neither has seen (inference.services.promotion).
            try:
                version = model_activate(user=run.created_by, model=version)
                note(_("Activated: not worse than the model it replaces."))
            except ApplicationError as exc:
                note(_("Not activated: %(why)s") % {"why": exc.message})
    run.refresh_from_db()
    _send(run, model=version.pk)
    return run
