"""Inference models: dataset snapshots, training runs, the model registry and prediction jobs.

Rows here are written only by ``inference.services``. Files (weights, predicted label volumes,
probability maps) live in ``cases.storage`` under the keys recorded on the rows. Exports and
review/comparison models belong to their own modules (room left on purpose).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from cases.models import Case, Label, LabelSet, Series

# Re-exported: the services and pages read them from here.
from core.models import ACTIVE_STATES as ACTIVE_STATES
from core.models import Job, one_active_job
from core.models import JobStatus as JobStatus


class DatasetSnapshot(models.Model):
    """A frozen dataset: which cases, which mask revisions and which split each case is in.

    The split is by case (never by slice, so neighbouring slices of one patient never sit
    on both sides of the evaluation), deterministic for a seed and stratified by etiology.
    """

    name = models.CharField(_("name"), max_length=200, blank=True, default="")
    label_set = models.ForeignKey(
        LabelSet, on_delete=models.PROTECT, related_name="+", verbose_name=_("label set")
    )
    # The filters the snapshot was built from ({"confirmed": true, "approved": true, ...}).
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    seed = models.IntegerField(_("split seed"), default=0)
    fractions = models.JSONField(_("split fractions"), default=list)
    # {"train": n, "val": n, "test": n} and per-etiology counts, for display without joins.
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("dataset snapshot")
        verbose_name_plural = _("dataset snapshots")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"dataset {self.pk}"


class DatasetItem(models.Model):
    """One case of a snapshot, with the exact inputs (series, mask revisions) it contributes."""

    class Split(models.TextChoices):
        TRAIN = "train", _("Training")
        VAL = "val", _("Validation")
        TEST = "test", _("Test")

    snapshot = models.ForeignKey(
        DatasetSnapshot, on_delete=models.CASCADE, related_name="items", verbose_name=_("dataset")
    )
    # SET_NULL: a deleted case leaves the record of what a past model was trained on.
    case = models.ForeignKey(
        Case, on_delete=models.SET_NULL, null=True, related_name="+", verbose_name=_("case")
    )
    case_code = models.CharField(_("case code"), max_length=64)
    etiology = models.ForeignKey(
        Label, on_delete=models.PROTECT, null=True, related_name="+", verbose_name=_("etiology")
    )
    split = models.CharField(_("split"), max_length=5, choices=Split.choices, db_index=True)
    # {"DWI": series id, "ADC": series id, "FLAIR": series id}
    series_ids = models.JSONField(_("series per kind"), default=dict)
    # [{"annotation": id, "revision": id, "series": id, "key": storage key, "state": "..."}]
    revisions = models.JSONField(_("mask revisions"), default=list)

    class Meta:
        verbose_name = _("dataset item")
        verbose_name_plural = _("dataset items")
        ordering = ["snapshot", "split", "case_code"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "case"], name="dataset_item_case_once"),
        ]

    def __str__(self) -> str:
        return f"{self.case_code} ({self.split})"


class TrainingRun(Job):
    """One training of the U-Net on a dataset snapshot, run by the training cluster."""

    dataset = models.ForeignKey(
        DatasetSnapshot,
        on_delete=models.PROTECT,
        related_name="runs",
        verbose_name=_("dataset"),
    )
    # Hyper-parameters as requested (epochs, batch size, encoder, ...).
    params = models.JSONField(_("hyper-parameters"), default=dict, blank=True)
    # One entry per epoch: {"epoch", "train_loss", "val_loss", "dice": {...}, ...}.
    history = models.JSONField(_("history"), default=list, blank=True)
    # Validation metrics of the best epoch.
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    best_epoch = models.IntegerField(_("best epoch"), null=True, blank=True)
    device = models.CharField(_("device"), max_length=32, blank=True, default="")
    log = models.TextField(_("log"), blank=True, default="")
    is_demo = models.BooleanField(_("demo"), default=False)
    activate = models.BooleanField(_("activate when done"), default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )

    class Meta:
        verbose_name = _("training run")
        verbose_name_plural = _("training runs")
        ordering = ["-created_at", "-id"]
        # One run trains at a time: every run has the same target.
        constraints = [one_active_job("training_run_one_active")]

    def __str__(self) -> str:
        return f"training {self.pk} ({self.status})"


#: Why the sanity rule refused a model (codes of ``inference.ml.trainer.unusable_reason``).
UNUSABLE_REASONS = [
    (
        "lesion_dice_near_zero",
        _("its validation lesion Dice is near zero: it does not find the lesions"),
    ),
    (
        "lesion_everywhere",
        _("its validation predictions cover an implausible share of the brain"),
    ),
]


class ModelVersion(models.Model):
    """A registered, usable model: weights, spec, data, metrics. At most one is active."""

    name = models.CharField(_("name"), max_length=200)
    run = models.OneToOneField(
        TrainingRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="model_version",
        verbose_name=_("training run"),
    )
    dataset = models.ForeignKey(
        DatasetSnapshot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="models",
        verbose_name=_("dataset"),
    )
    label_set = models.ForeignKey(
        LabelSet, on_delete=models.PROTECT, related_name="+", verbose_name=_("label set")
    )
    weights_key = models.CharField(_("weights key"), max_length=255, unique=True)
    weights_sha256 = models.CharField(_("weights SHA-256"), max_length=64)
    weights_bytes = models.BigIntegerField(_("weights size"), default=0)
    # ModelSpec.to_dict(): architecture, encoder, channels, labels, geometry, normalisation.
    spec = models.JSONField(_("architecture"))
    hyperparameters = models.JSONField(_("hyper-parameters"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    training_seconds = models.FloatField(_("training time (s)"), default=0.0)
    code_version = models.CharField(_("code version"), max_length=100, blank=True, default="")
    is_demo = models.BooleanField(
        _("demo"),
        default=False,
        help_text=_("Trained on synthetic phantoms: not for clinical use."),
    )
    is_active = models.BooleanField(_("active"), default=False)
    # The sanity rule at registration (inference.ml.trainer.unusable_reason): a model that
    # calls much of the brain lesion, or finds no lesion, can never be activated.
    usable = models.BooleanField(_("usable"), default=True)
    # The learned case-level etiology model registered with the U-Net (etiology.reasoning.
    # case_model): its file, checksum and description (features, metrics on the test split).
    case_model_key = models.CharField(_("case model key"), max_length=255, blank=True, default="")
    case_model_sha256 = models.CharField(
        _("case model SHA-256"), max_length=64, blank=True, default=""
    )
    case_model = models.JSONField(_("case model"), default=dict, blank=True)
    unusable_reason = models.CharField(
        _("why unusable"), max_length=40, blank=True, default="", choices=UNUSABLE_REASONS
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    activated_at = models.DateTimeField(_("activated"), null=True, blank=True)

    class Meta:
        verbose_name = _("model version")
        verbose_name_plural = _("model versions")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=models.Q(is_active=True), name="one_active_model"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def unusable_message(self) -> str:
        """Why the model cannot be activated, in the reader's language ("" when usable)."""
        if self.usable:
            return ""
        return str(self.get_unusable_reason_display() or self.unusable_reason)


class PredictionJob(Job):
    """One prediction of a case with one model version; results stored per series."""

    case = models.ForeignKey(
        Case, on_delete=models.CASCADE, related_name="predictions", verbose_name=_("case")
    )
    model = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        related_name="predictions",
        verbose_name=_("model"),
    )
    reference_series = models.ForeignKey(
        Series,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reference series"),
    )
    etiology = models.ForeignKey(
        Label,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("predicted etiology"),
    )
    confidence = models.FloatField(_("confidence"), null=True, blank=True)
    # {"<label name>": share of the lesion-volume-weighted vote}
    probabilities = models.JSONField(_("probabilities"), default=dict, blank=True)
    volumes_ml = models.JSONField(_("lesion volume per label (ml)"), default=dict, blank=True)
    # {"count": n, "total_ml": x, "items": [{"label", "volume_ml", "centroid", "bbox"}]}
    lesions = models.JSONField(_("lesions"), default=dict, blank=True)
    notes = models.JSONField(_("notes"), default=list, blank=True)
    timings = models.JSONField(_("timings"), default=dict, blank=True)
    # Lesion pattern, work-up used and each method's answer (inference.services.reasoning).
    reasoning = models.JSONField(_("reasoning"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )

    class Meta:
        verbose_name = _("prediction")
        verbose_name_plural = _("predictions")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["case", "model", "status"])]
        constraints = [one_active_job("prediction_job_one_active")]

    def __str__(self) -> str:
        return f"prediction {self.pk} ({self.status})"


class PredictionSeries(models.Model):
    """The predicted label volume of one series (every series on the reference grid)."""

    job = models.ForeignKey(
        PredictionJob, on_delete=models.CASCADE, related_name="outputs", verbose_name=_("job")
    )
    series = models.ForeignKey(
        Series, on_delete=models.CASCADE, related_name="predictions", verbose_name=_("series")
    )
    # uint8 (z, y, x) label values, C order (.npy); shared by series on the same grid.
    labels_key = models.CharField(_("label volume key"), max_length=255)
    # uint8 (K+1, z, y, x) class probabilities scaled to 0..255 (background first).
    probabilities_key = models.CharField(
        _("probability maps key"), max_length=255, blank=True, default=""
    )
    shape = models.JSONField(_("shape"))

    class Meta:
        verbose_name = _("predicted series")
        verbose_name_plural = _("predicted series")
        constraints = [
            models.UniqueConstraint(fields=["job", "series"], name="prediction_series_once"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.series_id}"


class ExportJob(Job):
    """A dataset export (nnU-Net raw layout or DICOM SEG) built by a background task.

    The zip lives in ``cases.storage`` under ``result_key``; ``manifest`` repeats the zip's
    ``manifest.json`` (file checksums, filters, the cases and mask revisions it came from).
    """

    class Format(models.TextChoices):
        NNUNET = "nnunet", _("nnU-Net raw dataset")
        DICOM_SEG = "dicom-seg", _("DICOM SEG")

    format = models.CharField(_("format"), max_length=12, choices=Format.choices)
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    # The requested case ids (None = every confirmed case with an approved annotation).
    case_ids = models.JSONField(_("cases"), null=True, blank=True)
    snapshot = models.ForeignKey(
        DatasetSnapshot,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="exports",
        verbose_name=_("dataset"),
    )
    result_key = models.CharField(_("result key"), max_length=255, blank=True, default="")
    result_bytes = models.BigIntegerField(_("size in bytes"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True, default="")
    manifest = models.JSONField(_("manifest"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-created_at", "-id"]
        constraints = [one_active_job("export_job_one_active")]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.format}, {self.status})"
