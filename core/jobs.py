"""The one way to request a background job: de-duplicated by the database, queued on commit.

Every long operation (prediction, training, export; later the DICOM gateway and the chat bot)
asks for its job through ``job_request``. A lookup alone cannot de-duplicate concurrent
requests (``select_for_update()`` locks nothing when no row exists yet), so the job models
carry a partial unique constraint on their ``target`` while the job is active
(``core.models.one_active_job``): of ten simultaneous identical requests one insert wins and the
other nine get the winner's row.

Running jobs beat (``job_heartbeat``); ``jobs_reap_stale`` marks the jobs of dead workers
interrupted so that a new request is not answered with a job nobody runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from core.models import ACTIVE_STATES, Job, JobStatus

logger = logging.getLogger(__name__)

J = TypeVar("J", bound=Job)


def job_request(
    *,
    model: type[J],
    target: str,
    create: Callable[[], J],
    task: str | None,
    group: str,
    cluster: str | None = None,
) -> tuple[J, bool]:
    """Returns the active job of ``model`` for ``target``, or creates one with ``create``.

    ``create`` runs inside a savepoint and must create exactly one row of ``model`` with
    ``target=target`` (plus whatever else belongs with it: audit rows, snapshots); a concurrent
    request that wins the race makes it roll back, and the winner's job is returned.
    The django-q task ``task(job_id)`` is queued (on ``cluster``, default the default one) after
    the outermost transaction commits, never for a returned duplicate nor after a rollback;
    ``task=None`` leaves the job queued for a caller that runs it in the foreground.

    Returns:
        ``(job, created)``.
    """
    if not target:
        raise ValueError("a job request needs a target")
    active = model._default_manager.filter(target=target, status__in=ACTIVE_STATES)
    with transaction.atomic():
        existing = active.order_by("pk").first()
        if existing is not None:
            return existing, False
        try:
            with transaction.atomic():
                job = create()
        except IntegrityError:
            # Another request inserted the active job between our look and our insert (on
            # PostgreSQL our insert waited for its commit). Read committed: we see it now.
            existing = active.order_by("pk").first()
            if existing is None:
                raise
            return existing, False
        if job.target != target:
            raise ValueError("create() must store the requested target")
        if task is not None:
            job_id, name = job.pk, task
            transaction.on_commit(
                lambda: job_enqueue(
                    model=model, job_id=job_id, task=name, group=group, cluster=cluster
                )
            )
    return job, True


def job_enqueue(
    *, model: type[Job], job_id: int, task: str, group: str, cluster: str | None = None
) -> str:
    """Queues ``task(job_id)`` on django-q and records the task id on the job row."""
    from django_q.tasks import async_task

    options: dict[str, Any] = {"task_name": f"{group}-{job_id}", "group": group}
    if cluster is not None:
        options["cluster"] = cluster
    task_id = str(async_task(task, job_id, **options) or "")
    model._default_manager.filter(pk=job_id, task_id="").update(task_id=task_id)
    return task_id


def heartbeat_seconds() -> float:
    """How often a running job touches ``heartbeat_at``."""
    return float(getattr(settings, "STROKEAID", {}).get("JOB_HEARTBEAT_SECONDS", 20))


def stale_after() -> timedelta:
    """A running job whose heartbeat is older than this is dead (default four heartbeats)."""
    configured = getattr(settings, "STROKEAID", {}).get("JOB_STALE_SECONDS")
    return timedelta(seconds=float(configured or 4 * heartbeat_seconds()))


@contextmanager
def job_heartbeat(*, model: type[Job], job_id: int, every: float | None = None) -> Iterator[None]:
    """Touches the job's ``heartbeat_at`` every ``every`` seconds from a background thread while
    the block runs, however long one step of the work takes (an epoch may take minutes). A
    killed worker stops beating, and the reaper can tell its job is dead within seconds."""
    interval = every if every is not None else heartbeat_seconds()
    stop = threading.Event()
    manager = model._default_manager

    def beat() -> None:
        try:
            while not stop.wait(interval):
                manager.filter(pk=job_id, status=JobStatus.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        except Exception:  # a lost database must not kill the work; the reaper decides
            logger.exception("heartbeat of %s %s failed", model.__name__, job_id)
        finally:
            connections.close_all()

    manager.filter(pk=job_id).update(heartbeat_at=timezone.now())
    thread = threading.Thread(target=beat, name=f"heartbeat-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


def jobs_reap_stale(
    *,
    model: type[J],
    message: str,
    older_than: timedelta | None = None,
    notify: Callable[[J], None] | None = None,
) -> list[int]:
    """Marks the jobs of ``model`` whose worker is gone as interrupted, calls ``notify(job)``
    for each (live progress) and returns their ids.

    Gone means: running with a heartbeat (or, before the first one, a start) older than
    ``older_than`` (default ``stale_after()``); or queued or running while django-q already
    recorded the task as finished (a timeout kill, a crash before the status was written); or
    queued for that long with no task at all (the process died between commit and queueing).
    """
    from django_q.models import Task

    cutoff = timezone.now() - (older_than if older_than is not None else stale_after())
    manager = model._default_manager
    candidates = list(
        manager.filter(status__in=ACTIVE_STATES).only(
            "id", "status", "task_id", "heartbeat_at", "started_at", "created_at"
        )
    )
    finished = set(
        Task.objects.filter(id__in=[j.task_id for j in candidates if j.task_id]).values_list(
            "id", flat=True
        )
    )
    reaped: list[J] = []
    for job in candidates:
        last_sign = job.heartbeat_at or job.started_at
        silent = job.status == JobStatus.RUNNING and (last_sign is None or last_sign < cutoff)
        lost = job.status == JobStatus.QUEUED and not job.task_id and job.created_at < cutoff
        if not (silent or lost or job.task_id in finished):
            continue
        updated = manager.filter(pk=job.pk, status=job.status).update(
            status=JobStatus.INTERRUPTED, finished_at=timezone.now(), error=message
        )
        if updated:
            job.status = JobStatus.INTERRUPTED
            job.error = message
            reaped.append(job)
    ids = [job.pk for job in reaped]
    if ids:
        logger.warning("marked stale %s %s as interrupted", model.__name__, ids)
    for job in reaped:
        if notify is not None:
            notify(job)
    return ids
