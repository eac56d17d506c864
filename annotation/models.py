"""Annotation models: one annotation per (series, annotator) with immutable mask revisions.

A mask is a label volume of the series' shape (z, y, x), uint8, voxel value = label value of
the active label set (0 = background). Every save is a new ``AnnotationRevision`` whose array
is stored once and never changed, so any earlier state can be restored and audited.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cases.models import Series


class Annotation(models.Model):
    """One annotator's lesion mask on one series, moving through the review workflow.

    A consensus annotation (``is_consensus``, no annotator) is the adjudicated mask of a
    series that the review pages build from several annotators' work.
    """

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Submitted")
        APPROVED = "approved", _("Approved")
        RETURNED = "returned", _("Returned")

    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, related_name="annotations", verbose_name=_("series")
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="annotations",
        verbose_name=_("annotator"),
    )
    is_consensus = models.BooleanField(
        _("consensus"),
        default=False,
        help_text=_("The adjudicated mask of the series, built from several annotators."),
    )
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.DRAFT, db_index=True
    )
    # The newest revision (denormalised: the editor, the ETag check and list pages read it
    # without a sub-query). Revisions are never deleted while the annotation exists.
    current_revision = models.ForeignKey(
        "AnnotationRevision",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("current revision"),
    )
    revision_count = models.PositiveIntegerField(_("revisions"), default=0)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviewed_annotations",
        verbose_name=_("reviewer"),
    )
    review_comment = models.TextField(_("review comment"), blank=True, default="")
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("annotation")
        verbose_name_plural = _("annotations")
        ordering = ["series", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "annotator"],
                condition=models.Q(is_consensus=False),
                name="annotation_one_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["series"],
                condition=models.Q(is_consensus=True),
                name="annotation_one_consensus",
            ),
            models.CheckConstraint(
                condition=models.Q(is_consensus=True) | models.Q(annotator__isnull=False),
                name="annotation_has_annotator",
            ),
        ]

    def __str__(self) -> str:
        who = "consensus" if self.is_consensus else str(self.annotator_id)
        return f"annotation {self.pk} (series {self.series_id}, {who}, {self.state})"

    @property
    def etag(self) -> str | None:
        """The entity tag of the current mask; changes on every save (even of equal voxels)."""
        if not self.revision_count:
            return None
        return f'"{self.pk}-{self.revision_count}"'


class AnnotationRevision(models.Model):
    """An immutable saved state of an annotation's mask."""

    class Source(models.TextChoices):
        EDITOR = "editor", _("Editor")
        API = "api", _("API upload")
        IMPORT = "import", _("Import")
        PREDICTION = "prediction", _("Model prediction")
        RESTORE = "restore", _("Restored revision")

    annotation = models.ForeignKey(
        Annotation, on_delete=models.CASCADE, related_name="revisions", verbose_name=_("annotation")
    )
    number = models.PositiveIntegerField(_("number"))
    key = models.CharField(_("storage key"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    nbytes = models.BigIntegerField(_("size in bytes"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("saved by"),
    )
    created_at = models.DateTimeField(_("saved"), auto_now_add=True)
    source = models.CharField(
        _("source"), max_length=12, choices=Source.choices, default=Source.EDITOR
    )
    # {"<label value>": voxel count} and {"<label value>": volume in ml}, background excluded.
    label_counts = models.JSONField(_("voxels per label"), default=dict)
    volumes_ml = models.JSONField(_("volume per label (ml)"), default=dict)
    restored_from = models.PositiveIntegerField(_("restored from"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True, default="")

    class Meta:
        verbose_name = _("mask revision")
        verbose_name_plural = _("mask revisions")
        ordering = ["annotation", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "number"], name="revision_number"),
        ]

    def __str__(self) -> str:
        return f"annotation {self.annotation_id} r{self.number}"

    @property
    def total_ml(self) -> float:
        return round(sum(float(v) for v in (self.volumes_ml or {}).values()), 3)
