"""Cases and their images, label sets (etiology classes) and the audit trail.

Label sets live here, beside the cases, because a case's etiology is a label: the annotation
and inference apps both build on them and the foundation must not import upward.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from cases.orientation import DisplayOrientation, display_orientation


class LabelSet(models.Model):
    """A versioned set of etiology labels. Exactly one set is active at a time."""

    name = models.CharField(_("name"), max_length=100)
    version = models.PositiveIntegerField(_("version"), default=1)
    is_active = models.BooleanField(_("active"), default=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("label set")
        verbose_name_plural = _("label sets")
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="labelset_name_version"),
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_labelset"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Label(models.Model):
    """An etiology class. ``value`` is the voxel value in label volumes (0 is background)."""

    label_set = models.ForeignKey(
        LabelSet, on_delete=models.CASCADE, related_name="labels", verbose_name=_("label set")
    )
    value = models.PositiveSmallIntegerField(_("voxel value"))
    name = models.SlugField(_("name"), max_length=50, help_text=_("Stable machine name."))
    # Display names per language code, e.g. {"en": "Atherothrombotic", "ru": "..."}.
    titles = models.JSONField(_("titles"), default=dict, blank=True)
    color = models.CharField(_("colour"), max_length=7, default="#ffffff")
    description = models.TextField(_("description"), blank=True, default="")

    class Meta:
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        ordering = ["label_set", "value"]
        constraints = [
            models.UniqueConstraint(fields=["label_set", "value"], name="label_value_unique"),
            models.UniqueConstraint(fields=["label_set", "name"], name="label_name_unique"),
            models.CheckConstraint(
                condition=models.Q(value__gte=1, value__lte=255), name="label_value_range"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def title(self) -> str:
        """The display name in the active language, falling back to English, then the name."""
        language = (translation.get_language() or "en").split("-")[0]
        titles: dict[str, Any] = self.titles or {}
        return str(titles.get(language) or titles.get("en") or self.name)


class Case(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("New")
        IMAGED = "imaged", _("Images uploaded")
        ANNOTATING = "annotating", _("Annotating")
        IN_REVIEW = "in_review", _("In review")
        APPROVED = "approved", _("Approved")
        ARCHIVED = "archived", _("Archived")

    code = models.CharField(
        _("code"), max_length=64, unique=True, help_text=_("Pseudonymous case code, never a name.")
    )
    etiology = models.ForeignKey(
        Label,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cases",
        verbose_name=_("etiology"),
    )
    confirmed = models.BooleanField(
        _("confirmed"),
        default=False,
        help_text=_("Etiology confirmed after the full work-up; only confirmed cases train."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.NEW, db_index=True
    )
    note = models.TextField(_("note"), blank=True, default="", max_length=20000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="cases",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("case")
        verbose_name_plural = _("cases")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.code


class Study(models.Model):
    """A de-identified imaging study; UIDs are re-mapped, dates and ids are not kept."""

    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="studies", verbose_name=_("case")
    )
    study_uid = models.CharField(_("study UID"), max_length=64, db_index=True)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        constraints = [
            models.UniqueConstraint(fields=["case", "study_uid"], name="study_uid_per_case"),
        ]

    def __str__(self) -> str:
        return f"{self.case.code} / {self.study_uid}"


class Series(models.Model):
    class Kind(models.TextChoices):
        DWI = "DWI", "DWI"
        ADC = "ADC", "ADC"
        FLAIR = "FLAIR", "FLAIR"
        CT = "CT", "CT"
        OTHER = "OTHER", _("Other")

    #: The clinical reading order wherever series are listed: DWI first (it shows the acute
    #: lesion), its ADC map next (confirms restricted diffusion), FLAIR (lesion age), then
    #: the rest. ``cases.selectors.series_kind_order()`` turns it into an ORDER BY.
    KIND_ORDER: ClassVar[tuple[str, ...]] = ("DWI", "ADC", "FLAIR", "CT", "OTHER")

    class Source(models.TextChoices):
        DICOM = "dicom", "DICOM"
        NIFTI = "nifti", "NIfTI"

    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="series", verbose_name=_("case")
    )
    study = models.ForeignKey(
        Study,
        on_delete=models.CASCADE,
        related_name="series",
        null=True,
        blank=True,
        verbose_name=_("study"),
    )
    series_uid = models.CharField(_("series UID"), max_length=64, db_index=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, db_index=True)
    source = models.CharField(_("source"), max_length=8, choices=Source.choices)
    description = models.CharField(_("description"), max_length=200, blank=True, default="")
    # Geometry, numpy order (z, y, x); affine is the 4x4 voxel (i=x, j=y, k=z) -> RAS mm matrix.
    shape = models.JSONField(_("shape"))
    spacing = models.JSONField(_("spacing"))
    affine = models.JSONField(_("affine"))
    # The de-identified header summary (no PHI): modality, sequence, b-value, manufacturer...
    header = models.JSONField(_("header"), default=dict, blank=True)
    # Defaults for window/level in the viewer, from the data's robust percentiles.
    window_center = models.FloatField(_("window centre"), default=0.0)
    window_width = models.FloatField(_("window width"), default=1.0)
    quarantined = models.BooleanField(
        _("quarantined"),
        default=False,
        help_text=_("Flagged or suspected burned-in annotation: stored but never used."),
    )
    quarantine_reason = models.CharField(
        _("quarantine reason"), max_length=200, blank=True, default=""
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("series")
        verbose_name_plural = _("series")
        ordering = ["case", "kind", "id"]
        constraints = [
            models.UniqueConstraint(fields=["case", "series_uid"], name="series_uid_per_case"),
        ]

    def __str__(self) -> str:
        return f"{self.case.code} {self.kind}"

    @property
    def display(self) -> DisplayOrientation:
        """How its slices are shown: the radiological convention (``cases.orientation``)."""
        cached: DisplayOrientation | None = getattr(self, "_display", None)
        if cached is None:
            cached = display_orientation(self.affine)
            self._display = cached
        return cached


class Volume(models.Model):
    """The stored voxel array of a series (see ``cases.storage``)."""

    series = models.OneToOneField(
        Series, on_delete=models.CASCADE, related_name="volume", verbose_name=_("series")
    )
    key = models.CharField(_("storage key"), max_length=255)
    dtype = models.CharField(_("dtype"), max_length=16)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    nbytes = models.BigIntegerField(_("size in bytes"))
    min_value = models.FloatField(_("minimum"), default=0.0)
    max_value = models.FloatField(_("maximum"), default=0.0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("volume")
        verbose_name_plural = _("volumes")

    def __str__(self) -> str:
        return self.key


class UploadJob(models.Model):
    """A background ingestion of a large upload."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="upload_jobs", verbose_name=_("case")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, verbose_name=_("created by")
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    progress = models.FloatField(_("progress"), default=0.0)
    staging_key = models.CharField(_("staging key"), max_length=255, blank=True, default="")
    kind = models.CharField(_("kind"), max_length=8, blank=True, default="")
    file_names = models.JSONField(_("file names"), default=list)
    total_bytes = models.BigIntegerField(_("total bytes"), default=0)
    series = models.ManyToManyField(Series, blank=True, related_name="+", verbose_name=_("series"))
    error = models.JSONField(_("error"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("upload job")
        verbose_name_plural = _("upload jobs")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.status})"


class AuditEvent(models.Model):
    """Who did what, when: every state change and saved revision across the platform."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        verbose_name=_("actor"),
    )
    verb = models.CharField(_("action"), max_length=64, db_index=True)
    target_type = models.CharField(_("target type"), max_length=64)
    target_id = models.CharField(_("target id"), max_length=64)
    # SET_NULL: the trail outlives the case it speaks of.
    case = models.ForeignKey(
        Case,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("case"),
    )
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"])]

    def __str__(self) -> str:
        return f"{self.verb} {self.target_type}:{self.target_id}"
