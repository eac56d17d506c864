"""What every background job row has (abstract: each app keeps its own job tables)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class JobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    INTERRUPTED = "interrupted", _("Interrupted")


#: States of a job that is still going: a duplicate request returns that job.
ACTIVE_STATES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Job(models.Model):
    """State, progress, error, task id, timestamps and the de-duplication key of a job.

    Services move ``status`` (queued -> running -> done | failed | interrupted); the API answers
    202 with the row's id and clients follow it over REST or the websocket. ``target`` names
    what the job works on ("case 4 with model 2", "the training queue", one export request):
    at most one active job per target, enforced by the database (``one_active_job``), so
    concurrent duplicate requests get the running job instead of a second one.
    """

    status = models.CharField(
        _("status"),
        max_length=12,
        choices=JobStatus.choices,
        default=JobStatus.QUEUED,
        db_index=True,
    )
    progress = models.FloatField(_("progress"), default=0.0)
    error = models.TextField(_("error"), blank=True, default="")
    task_id = models.CharField(_("task id"), max_length=64, blank=True, default="")
    target = models.CharField(_("target"), max_length=128, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Touched by the running worker (core.jobs.job_heartbeat); a running row whose heartbeat
    # stopped belongs to a dead worker.
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)

    class Meta:
        abstract = True


def one_active_job(name: str) -> models.UniqueConstraint:
    """The constraint a concrete job model adds to its ``Meta.constraints``."""
    return models.UniqueConstraint(
        fields=["target"],
        condition=Q(status__in=[s.value for s in ACTIVE_STATES]) & ~Q(target=""),
        name=name,
    )


class ChannelEvent(models.Model):
    """A job event on its way from a worker process to the web process's websockets, for the
    embedded default without Redis (``core.channel_layers.DatabaseRelayChannelLayer``). Rows
    live a minute."""

    group = models.CharField(_("group"), max_length=100)
    message = models.JSONField(_("message"))
    origin = models.CharField(_("origin"), max_length=32)
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("channel event")
        verbose_name_plural = _("channel events")

    def __str__(self) -> str:
        return f"{self.group} #{self.pk}"
