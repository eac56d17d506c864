"""The front door of uploads and their background jobs: small uploads are ingested at once,
large ones staged in storage and run by a django-q2 task after the commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, BinaryIO, cast

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Case, UploadJob
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError
from strokeaid_site.events import job_event_send

from .inputs import UploadInput, UploadResult, upload_limits_check
from .parsing import upload_parse
from .storing import upload_ingest, upload_store

logger = logging.getLogger(__name__)


def upload_start(
    *,
    user: User,
    case: Case,
    inputs: list[UploadInput],
    kind: str | None = None,
) -> UploadResult | UploadJob:
    """Ingests a small upload now, or stages a large one and returns its queued job.

    Precondition: ``user`` may change ``case``.
    """
    upload_limits_check(inputs=inputs, kind=kind)
    total = sum(item.size for item in inputs)
    if total > app_settings.ASYNC_UPLOAD_BYTES:
        return upload_job_create(user=user, case=case, inputs=inputs, kind=kind)
    return upload_ingest(user=user, case=case, inputs=inputs, kind=kind)


def upload_job_create(
    *,
    user: User,
    case: Case,
    inputs: list[UploadInput],
    kind: str | None = None,
) -> UploadJob:
    """Stages the raw files under one ``staging/`` prefix and queues the job after commit.

    A duplicate request (same user, case, file names and sizes while the first is still
    queued or running) returns the existing job instead of staging the files twice.
    """
    upload_limits_check(inputs=inputs, kind=kind)
    names = [item.name for item in inputs]
    total = sum(item.size for item in inputs)
    for job in UploadJob.objects.filter(
        case=case,
        created_by=user,
        total_bytes=total,
        status__in=[UploadJob.Status.QUEUED, UploadJob.Status.RUNNING],
    ):
        if job.file_names == names:
            return job
    prefix = storage.staging_key(name="upload").rsplit("/", 1)[0]
    with storage.transactional():
        for index, item in enumerate(inputs):
            with item.opener() as fh:
                fh.seek(0)
                storage.write_bytes(f"{prefix}/{index:05d}", cast(BinaryIO, fh))
        job = UploadJob.objects.create(
            case=case,
            created_by=user,
            status=UploadJob.Status.QUEUED,
            staging_key=prefix,
            kind=kind or "",
            file_names=names,
            total_bytes=total,
        )
        job_id = job.pk
        transaction.on_commit(lambda: _queue(job_id))
        job_event_send("upload", job_id, {"status": job.status, "progress": 0.0})
    return job


def _queue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("cases.tasks.upload_job_run_task", job_id, task_name=f"upload-{job_id}")


def _staged_inputs(job: UploadJob) -> list[UploadInput]:
    def opener_for(key: str) -> Callable[[], AbstractContextManager[IO[bytes]]]:
        @contextmanager
        def _open() -> Iterator[IO[bytes]]:
            with storage.as_local_file(key) as path, open(path, "rb") as fh:
                yield fh

        return _open

    inputs = []
    for index, name in enumerate(job.file_names):
        key = f"{job.staging_key}/{index:05d}"
        inputs.append(UploadInput(name=name, size=storage.size(key), opener=opener_for(key)))
    return inputs


def _job_update(job: UploadJob, **fields: Any) -> None:
    UploadJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def upload_job_run(*, job_id: int) -> UploadJob:
    """Runs a queued upload job: parse with progress, store, record the outcome.

    Idempotent: a job that is no longer queued is left alone. The staged files are deleted
    whatever the outcome, and the original file names are dropped from the row once the job
    ends (names may carry original UIDs); a failure keeps the offending name in ``error``.
    """
    job = UploadJob.objects.select_related("case", "created_by").get(pk=job_id)
    claimed = UploadJob.objects.filter(pk=job_id, status=UploadJob.Status.QUEUED).update(
        status=UploadJob.Status.RUNNING, started_at=timezone.now(), progress=0.0
    )
    if not claimed:
        return job
    job.refresh_from_db()
    job_event_send("upload", job.pk, {"status": job.status, "progress": 0.0})
    last = [0.0]

    def progress(fraction: float) -> None:
        # Throttled: one row update and one event per 5 % is plenty for a progress bar.
        if fraction - last[0] >= 0.05 or fraction >= 0.9:
            last[0] = fraction
            _job_update(job, progress=round(fraction, 3))
            job_event_send("upload", job.pk, {"status": job.status, "progress": job.progress})

    try:
        inputs = _staged_inputs(job)
        parsed = upload_parse(inputs=inputs, kind=job.kind or None, progress=progress)
        with transaction.atomic():
            series = upload_store(user=job.created_by, case=job.case, parsed=parsed)
            job.series.set(series)
            _job_update(
                job,
                status=UploadJob.Status.DONE,
                progress=1.0,
                finished_at=timezone.now(),
                file_names=[],
                error=None,
            )
            job_event_send(
                "upload", job.pk,
                {"status": job.status, "progress": 1.0, "series": [s.pk for s in series]},
            )  # fmt: skip
    except ApplicationError as exc:
        _job_fail(job, {"message": exc.message, "extra": exc.extra, "status": exc.status_code})
    except Exception:
        logger.exception("upload job %s failed", job.pk)
        _job_fail(job, {"message": _("The upload could not be processed."), "extra": {}})
    finally:
        # Guarded: an empty prefix would name the whole store.
        if job.staging_key.startswith("staging/"):
            storage.delete_prefix(job.staging_key)
    return job


def _job_fail(job: UploadJob, error: dict[str, Any]) -> None:
    _job_update(
        job,
        status=UploadJob.Status.FAILED,
        finished_at=timezone.now(),
        file_names=[],
        error=error,
    )
    job_event_send("upload", job.pk, {"status": job.status, "error": error})
