"""Studies a PACS sent to the DICOM listener, on their way into cases.

No patient identifier is kept here: a study is known by a keyed hash of its Study Instance
UID (the same secret that re-maps UIDs at de-identification) and, once ingested, by its
pseudonymous case.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cases.models import Case
from core.models import Job, one_active_job


class ReceivedStudy(models.Model):
    class State(models.TextChoices):
        RECEIVING = "receiving", _("Receiving")
        INGESTING = "ingesting", _("Ingesting")
        INGESTED = "ingested", _("Ingested")
        PREDICTED = "predicted", _("Prediction requested")
        SENT = "sent", _("Results sent")
        FAILED = "failed", _("Failed")

    study_key = models.CharField(_("study key"), max_length=64, unique=True)
    calling_ae = models.CharField(_("calling AE title"), max_length=16)
    state = models.CharField(
        _("state"), max_length=12, choices=State.choices, default=State.RECEIVING, db_index=True
    )
    instances = models.PositiveIntegerField(_("instances"), default=0)
    duplicates = models.PositiveIntegerField(_("instances received again"), default=0)
    case = models.ForeignKey(
        Case,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("case"),
    )
    prediction_id = models.PositiveIntegerField(_("prediction"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True, default="")
    first_at = models.DateTimeField(_("first instance"), auto_now_add=True)
    last_at = models.DateTimeField(_("last instance"), db_index=True)
    ingested_at = models.DateTimeField(_("ingested"), null=True, blank=True)
    # Original UIDs and headers (encrypted; for the results sent back only), until expiry.
    linkage_key = models.CharField(_("linkage"), max_length=255, blank=True, default="")
    linkage_expires_at = models.DateTimeField(_("linkage expires"), null=True, blank=True)
    send_attempts = models.PositiveIntegerField(_("send attempts"), default=0)
    next_send_at = models.DateTimeField(_("next send attempt"), null=True, blank=True)
    sent_at = models.DateTimeField(_("results sent"), null=True, blank=True)
    # Destinations (by name) that already hold this study's results: a retry skips them.
    delivered_to = models.JSONField(_("delivered to"), default=list, blank=True)

    class Meta:
        verbose_name = _("received study")
        verbose_name_plural = _("received studies")
        ordering = ["-last_at"]

    def __str__(self) -> str:
        return f"{self.calling_ae} {self.study_key[:8]} ({self.state})"


class DestinationStatus(models.Model):
    """The last result of sending to one configured destination (an ``AE@host:port`` or a
    DICOMweb URL), for the PACS page."""

    name = models.CharField(_("destination"), max_length=255, unique=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_ok_at = models.DateTimeField(_("last delivery"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")
    delivered = models.PositiveIntegerField(_("objects delivered"), default=0)

    class Meta:
        verbose_name = _("destination status")
        verbose_name_plural = _("destination statuses")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PacsImport(Job):
    """A study pulled from the PACS's DICOMweb service (WADO-RS) into a new case.

    The study's UID is kept encrypted (the linkage key) only while the job runs; a finished
    job knows the study by its received row and case alone.
    """

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    study_token = models.TextField(_("study (encrypted)"), blank=True, default="")
    expected = models.PositiveIntegerField(_("instances expected"), default=0)
    retrieved = models.PositiveIntegerField(_("instances retrieved"), default=0)
    received = models.ForeignKey(
        ReceivedStudy,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("received study"),
    )

    class Meta:
        verbose_name = _("PACS import")
        verbose_name_plural = _("PACS imports")
        ordering = ["-created_at"]
        constraints = [one_active_job("one_active_pacs_import")]

    def __str__(self) -> str:
        return f"PACS import {self.pk} ({self.status})"
