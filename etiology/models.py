"""The diagnostic work-up of a case (what TOAST is decided on)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cases.models import Case


class Workup(models.Model):
    """One row per case; ``NULL`` means not known / not done (see the REST contract)."""

    class Sex(models.TextChoices):
        FEMALE = "F", _("female")
        MALE = "M", _("male")

    case = models.OneToOneField(
        Case, on_delete=models.CASCADE, primary_key=True, related_name="workup"
    )
    atrial_fibrillation = models.BooleanField(_("atrial fibrillation"), null=True, blank=True)
    cardiac_source = models.BooleanField(_("other high-risk cardiac source"), null=True, blank=True)
    # xgettext:no-python-format
    stenosis_50 = models.BooleanField(_("stenosis of 50 % or more"), null=True, blank=True)
    vessel_imaging = models.BooleanField(_("vessel imaging done"), null=True, blank=True)
    cardiac_workup = models.BooleanField(_("cardiac work-up done"), null=True, blank=True)
    lacunar_syndrome = models.BooleanField(_("lacunar syndrome"), null=True, blank=True)
    other_cause = models.CharField(
        _("other determined cause"), max_length=200, null=True, blank=True
    )
    age = models.PositiveSmallIntegerField(_("age"), null=True, blank=True)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, null=True, blank=True)
    nihss = models.PositiveSmallIntegerField(_("NIHSS"), null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("work-up")
        verbose_name_plural = _("work-ups")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(age__isnull=True) | models.Q(age__lte=120), name="workup_age"
            ),
            models.CheckConstraint(
                condition=models.Q(nihss__isnull=True) | models.Q(nihss__lte=42),
                name="workup_nihss",
            ),
        ]

    def __str__(self) -> str:
        return f"work-up of {self.case_id}"
