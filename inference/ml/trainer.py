"""Lean in-memory U-Net training loop with validation, early stopping and atomic checkpoints."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from inference.ml.data import CaseArrays, build_slice_dataset
from inference.ml.losses import SegmentationLoss, class_weights_from_counts, label_counts
from inference.ml.metrics import (
    LesionDetection,
    OverlapCounts,
    bootstrap_interval,
    classification_report,
    lesion_detection,
    overlap_counts,
)
from inference.ml.networks import ModelSpec, NormalisationSpec, build_from_spec, save_checkpoint
from inference.ml.predictor import Predictor, _cpu_count, resolve_device
from inference.ml.transforms import AugmentConfig, augment_batch

Monitor = Literal["combined", "dice", "lesion_f1", "case_macro_f1"]
Schedule = Literal["onecycle", "cosine"]
StorageDtype = Literal["float32", "float16"]
#: Fields whose value must be one of their Literal type's choices.
_CHOICES: dict[str, tuple[str, ...]] = {
    "monitor": get_args(Monitor),
    "schedule": get_args(Schedule),
    "storage_dtype": get_args(StorageDtype),
}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (stored with the model version).

    Attributes:
        epochs: maximum epochs.
        batch_size: slices per step.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        seed: seeds torch, numpy, python, slice choice and augmentation.
        encoder: smp encoder (architecture fields are mirrored in the spec; see
            :func:`spec_from_config`).
        in_kinds: series kinds used as input.
        context_slices: neighbouring slices per side (2.5D).
        projection_kinds: kinds whose whole-volume maximum-intensity projection is added to
            every slice (global context for the case etiology; see ``ModelSpec``). Off by
            default: a DWI projection slowed the etiology learning on the phantom benchmark
            (held-out case macro-F1 0.37 with it, 0.85 without on 100 training cases; 0.78
            and 0.87 on 200).
        image_size: ``(H, W)`` to resize to, or ``None`` to pad to a multiple of 32.
        augment: augmentation settings (``AugmentConfig(enabled=False)`` disables).
        early_stopping_patience: validations without improvement before stopping (0
            disables early stopping).
        min_epochs: no early stop before this epoch (``None``: half of ``epochs``). The
            high-rate first half of a one-cycle schedule often dips on validation; stopping
            there would keep weights from before the annealing that usually gives the best
            epoch (a 600-case phantom run fell at epochs 8 and 12 and peaked at 28 of 28).
        monitor: validation score for best epoch / early stopping; ``"combined"`` is the mean
            of foreground Dice, lesion-wise F1 and case-level macro-F1.
        schedule: ``"onecycle"`` or ``"cosine"`` (per-step schedules).
        amp: mixed precision on CUDA (bf16 when supported, else fp16 + GradScaler).
        channels_last: channels-last memory format (faster convolutions on CPU and GPU).
        num_threads: CPU threads (``None`` = all cores available to the process).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
        empty_ratio: empty slices kept per lesion slice (see ``build_slice_dataset``).
        lesion_fraction: expected share of lesion slices per epoch (``None``: plain shuffle).
        balance_etiology: sample lesion slices so every case etiology gets the same share
            per epoch (see ``SliceDataset.epoch_indices``).
        lesion_class_boost: cap of the extra cross-entropy factor for small lesion classes
            (see ``class_weights_from_counts``; 1 = off).
        ce_weight: cross-entropy factor.
        dice_weight: Dice factor.
        lesion_dice_weight: factor of the any-lesion Dice (lesion extent whatever the label).
        max_class_weight: clip of inverse-sqrt-frequency class weights.
        grad_clip: gradient-norm clip (0 disables).
        validate_every: run validation every N epochs (and after the last one).
        storage_dtype: dtype of the in-memory training slices (``"float16"`` halves the
            dataset's memory, host or GPU; every batch is computed in float32 or AMP anyway).
        min_steps: the training budget in optimizer steps: the run lasts at least this
            many steps whatever ``epochs`` says (more epochs on small datasets: 24 cases
            make ~14 steps an epoch, and a network that has taken a few hundred steps
            still calls most of the head lesion). Early stopping ends it sooner once the
            validation score has converged, but never before half of the planned steps.
        max_minutes: wall-clock budget; the run stops (after a last validation) when it is
            spent. A run that took fewer than ``min_steps`` steps is reported
            ``undertrained``.
        validate_every_steps: validate at least this many steps apart (with tiny epochs,
            validating every epoch would cost more than training).
        target_spacing: in-plane pixel size (mm) slices are resampled to (``None``: none).
        prior_channels: physics-prior input channels (``("adc_core",)``: the ADC core map).
        brain_masking: normalise inside the computed brain mask; no lesion outside it.

    Raises:
        ValueError: a choice field (``monitor``, ``schedule``, ``storage_dtype``) has a value
            outside its choices.
    """

    epochs: int = 50
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    encoder: str = "mobilenet_v2"
    in_kinds: tuple[str, ...] = ("DWI", "ADC", "FLAIR")
    context_slices: int = 1
    projection_kinds: tuple[str, ...] = ()
    image_size: tuple[int, int] | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    early_stopping_patience: int = 10
    min_epochs: int | None = None
    monitor: Monitor = "combined"
    schedule: Schedule = "onecycle"
    amp: bool = True
    channels_last: bool = True
    num_threads: int | None = None
    device: str = "auto"
    empty_ratio: float = 0.5
    lesion_fraction: float | None = 0.7
    balance_etiology: bool = True
    lesion_class_boost: float = 1.0
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    lesion_dice_weight: float = 1.0
    max_class_weight: float = 10.0
    grad_clip: float = 0.0
    validate_every: int = 1
    storage_dtype: StorageDtype = "float32"
    min_steps: int = 400
    max_minutes: float | None = None
    validate_every_steps: int = 100
    target_spacing: float | None = 1.5
    prior_channels: tuple[str, ...] = ("adc_core",)
    brain_masking: bool = True

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {', '.join(choices)}")
        if self.min_steps < 0 or self.validate_every_steps < 1:
            raise ValueError("min_steps must be >= 0 and validate_every_steps >= 1")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError("max_minutes must be > 0")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples as lists, nested augmentation as a dict)."""
        data = asdict(self)
        data["in_kinds"] = list(self.in_kinds)
        data["projection_kinds"] = list(self.projection_kinds)
        data["prior_channels"] = list(self.prior_channels)
        data["image_size"] = list(self.image_size) if self.image_size else None
        data["augment"] = self.augment.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from :meth:`to_dict` output; unknown keys are ignored."""
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        for key in ("in_kinds", "projection_kinds", "prior_channels"):
            if key in values:
                values[key] = tuple(values[key])
        if values.get("image_size") is not None:
            values["image_size"] = tuple(values["image_size"])
        if isinstance(values.get("augment"), Mapping):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)


def _projections(config: TrainConfig) -> tuple[str, ...]:
    """Projection kinds of ``config`` that are also inputs (a DWI projection needs DWI)."""
    return tuple(k for k in config.projection_kinds if k in config.in_kinds)


def spec_from_config(
    config: TrainConfig,
    *,
    label_values: Sequence[int],
    label_names: Sequence[str],
    presence_flags: bool = True,
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    normalisation: NormalisationSpec | None = None,
) -> ModelSpec:
    """The :class:`ModelSpec` matching ``config`` for a label set."""
    return ModelSpec(
        label_values=tuple(label_values),
        label_names=tuple(label_names),
        channel_kinds=tuple(config.in_kinds),
        context_slices=config.context_slices,
        projection_kinds=_projections(config),
        presence_flags=presence_flags,
        encoder=config.encoder,
        encoder_depth=encoder_depth,
        decoder_channels=tuple(decoder_channels),
        image_size=config.image_size,
        normalisation=normalisation or NormalisationSpec(),
        prior_channels=tuple(p for p in config.prior_channels if "ADC" in config.in_kinds),
        brain_masking=config.brain_masking,
        target_spacing=None if config.image_size is not None else config.target_spacing,
    )


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did (streamed to the browser and stored in the run history).

    Attributes:
        epoch: 1-based epoch number.
        train_loss: mean training loss.
        lr: learning rate at the end of the epoch.
        metrics: validation metrics (empty when not validated this epoch): ``dice_<value>``
            per label, ``dice_mean`` (foreground labels), ``lesion_dice`` (any label vs
            background), ``lesion_f1``, ``lesion_precision``,
            ``lesion_recall``, ``case_accuracy``, ``case_macro_f1``.
        score: monitored validation score (``nan`` when not validated).
        is_best: this epoch improved the score (its weights are checkpointed).
        train_seconds: wall time of the training pass (data + forward/backward/step).
        val_seconds: wall time of validation.
        steps: optimizer steps taken so far.
        planned_steps: steps the run is planned for (the budget).
    """

    epoch: int
    train_loss: float
    lr: float
    metrics: dict[str, float]
    score: float
    is_best: bool
    train_seconds: float
    val_seconds: float
    steps: int = 0
    planned_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (``nan`` score becomes ``None``)."""
        data = asdict(self)
        data["score"] = None if math.isnan(self.score) else self.score
        return data


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes:
        model: network with the BEST epoch's weights loaded (eval mode, on ``device``).
        spec: model spec.
        best_epoch: epoch of the best score (the last epoch when never validated).
        best_score: its score.
        best_metrics: its validation metrics.
        history: one report per finished epoch.
        stopped_early: patience ran out.
        cancelled: ``should_stop`` returned True.
        checkpoint_path: checkpoint file, when requested.
        device: device used.
        total_seconds: wall time of the whole run.
        n_train_slices: slices in the training set.
        steps: optimizer steps taken.
        planned_steps: steps planned (``max(epochs, min_steps)`` in steps).
        undertrained: fewer steps than ``config.min_steps`` were taken (time budget spent
            or cancelled): the model may not be usable.
        budget_exhausted: ``max_minutes`` ended the run.
    """

    model: nn.Module
    spec: ModelSpec
    best_epoch: int
    best_score: float
    best_metrics: dict[str, float]
    history: list[EpochReport]
    stopped_early: bool
    cancelled: bool
    checkpoint_path: Path | None
    device: str
    total_seconds: float
    n_train_slices: int
    steps: int = 0
    planned_steps: int = 0
    undertrained: bool = False
    budget_exhausted: bool = False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate(
    predictor: Predictor, cases: Sequence[CaseArrays], spec: ModelSpec
) -> dict[str, float]:
    """Validation metrics of ``predictor`` on annotated cases.

    Dice and lesion counts are pooled over all cases (a global Dice per label is stable
    with few cases); case-level etiology uses each case's ``etiology`` when set, else the
    label with most voxels in its reference mask.

    Each headline figure (``dice_mean``, ``lesion_dice``, ``lesion_f1``, ``case_macro_f1``,
    ``case_accuracy``) also gets a 95 % case-bootstrap interval as ``<name>_lo`` and
    ``<name>_hi`` (resampling cases and pooling again, as the figure itself is computed),
    with the number of cases it rests on in ``n_cases`` / ``n_etiology_cases``: with a
    handful of validation cases the interval is what tells a reader how little one
    number means.
    """
    labels = list(spec.label_values)
    # Per case: voxel counts (tp, fp, fn) per label and for any lesion, detection counts.
    per_label: list[list[tuple[int, int, int]]] = []
    per_fg: list[tuple[int, int, int]] = []
    per_detection: list[tuple[int, int, int, int]] = []
    truths: list[int] = []
    preds: list[int | None] = []
    shares: list[float] = []
    for case in cases:
        if case.mask is None:
            continue
        out = predictor.predict(case.volumes, case.spacing)
        if out.brain_volume_ml:
            shares.append(out.total_lesion_volume_ml / out.brain_volume_ml)
        fg = overlap_counts(out.label_volume != 0, case.mask != 0, [1])[1]
        per_fg.append((fg.tp, fg.fp, fg.fn))
        counts = overlap_counts(out.label_volume, case.mask, labels)
        per_label.append([(counts[lab].tp, counts[lab].fp, counts[lab].fn) for lab in labels])
        det = lesion_detection(out.label_volume, case.mask, connectivity=predictor.connectivity)
        per_detection.append((det.n_pred, det.n_ref, det.tp_pred, det.detected_ref))
        truth = case.etiology
        if truth is None:
            counts_per_label = np.bincount(case.mask.ravel(), minlength=256)[labels]
            truth = labels[int(np.argmax(counts_per_label))] if counts_per_label.any() else None
        if truth is not None:
            truths.append(truth)
            preds.append(out.etiology)
    label_counts_ = np.asarray(per_label, dtype=np.int64).reshape(-1, len(labels), 3)
    fg_counts = np.asarray(per_fg, dtype=np.int64).reshape(-1, 3)
    det_counts = np.asarray(per_detection, dtype=np.int64).reshape(-1, 4)

    def dice_mean(idx: npt.NDArray[np.int64]) -> float:
        tp, fp, fn = label_counts_[idx].sum(axis=0).T
        seen = tp + fp + fn > 0
        # Mean over labels present in reference or prediction: an absent label's "1.0"
        # would inflate the score of a model that merely predicts nothing.
        return (
            float(np.mean(2 * tp[seen] / (2 * tp[seen] + fp[seen] + fn[seen])))
            if seen.any()
            else 1.0
        )

    def lesion_dice(idx: npt.NDArray[np.int64]) -> float:
        return OverlapCounts(*(int(v) for v in fg_counts[idx].sum(axis=0))).dice

    def detection(idx: npt.NDArray[np.int64]) -> LesionDetection:
        return LesionDetection(*(int(v) for v in det_counts[idx].sum(axis=0)))

    def macro_f1(idx: npt.NDArray[np.int64]) -> float:
        return classification_report(
            [truths[i] for i in idx], [preds[i] for i in idx], labels
        ).macro_f1

    def accuracy(idx: npt.NDArray[np.int64]) -> float:
        return float(np.mean([truths[i] == preds[i] for i in idx]))

    everyone = np.arange(len(per_fg))
    pooled = label_counts_.sum(axis=0)
    metrics = {
        f"dice_{lab}": OverlapCounts(*(int(v) for v in pooled[i])).dice
        for i, lab in enumerate(labels)
    }
    metrics["dice_mean"] = dice_mean(everyone)
    # Label-agnostic lesion Dice: segmentation quality on its own (with the predictor's
    # default case-level relabelling, the per-label Dice also reflects the case etiology).
    metrics["lesion_dice"] = lesion_dice(everyone)
    found = detection(everyone)
    metrics["lesion_f1"] = found.f1
    metrics["lesion_precision"] = found.precision
    metrics["lesion_recall"] = found.recall
    metrics["n_cases"] = float(len(everyone))
    rng = np.random.default_rng(0)
    figures: dict[str, tuple[Callable[[npt.NDArray[np.int64]], float], int]] = {
        "dice_mean": (dice_mean, len(everyone)),
        "lesion_dice": (lesion_dice, len(everyone)),
        "lesion_f1": (lambda idx: detection(idx).f1, len(everyone)),
    }
    if shares:
        # The sanity rule's input: a model that calls much of the brain lesion is unusable.
        metrics["lesion_brain_share_max"] = float(max(shares))
    if truths:
        report = classification_report(truths, preds, labels)
        metrics["case_accuracy"] = report.accuracy
        metrics["case_macro_f1"] = report.macro_f1
        metrics["n_etiology_cases"] = float(len(truths))
        figures["case_macro_f1"] = (macro_f1, len(truths))
        figures["case_accuracy"] = (accuracy, len(truths))
    for name, (statistic, n) in figures.items():
        interval = bootstrap_interval(statistic, n, rng=rng)
        if interval is not None:
            metrics[f"{name}_lo"], metrics[f"{name}_hi"] = interval
    return metrics


#: Below this validation lesion Dice a model does not find lesions (a near-zero Dice is
#: what a network that labels the whole volume, or nothing, scores).
MIN_USABLE_LESION_DICE = 0.1
#: A confirmed stroke never covers a third of the brain; a model whose validation
#: predictions do has learnt "head = lesion".
MAX_USABLE_LESION_SHARE = 0.35


def unusable_reason(metrics: Mapping[str, float]) -> str | None:
    """The sanity rule of a trained model, from its best validation metrics.

    Returns ``"lesion_everywhere"`` when a validation prediction covers more than
    :data:`MAX_USABLE_LESION_SHARE` of its brain mask, ``"lesion_dice_near_zero"`` when the
    validation lesion Dice is below :data:`MIN_USABLE_LESION_DICE`, else ``None`` (also
    when there was no validation to judge by).
    """
    share = metrics.get("lesion_brain_share_max")
    if share is not None and math.isfinite(share) and share > MAX_USABLE_LESION_SHARE:
        return "lesion_everywhere"
    dice = metrics.get("lesion_dice")
    if dice is not None and math.isfinite(dice) and dice < MIN_USABLE_LESION_DICE:
        return "lesion_dice_near_zero"
    return None


def _score(metrics: Mapping[str, float], monitor: Monitor) -> float:
    if monitor == "combined":
        parts = [metrics["dice_mean"], metrics["lesion_f1"]]
        if "case_macro_f1" in metrics:
            parts.append(metrics["case_macro_f1"])
        return float(np.mean(parts))
    key = {"dice": "dice_mean", "lesion_f1": "lesion_f1", "case_macro_f1": "case_macro_f1"}
    return float(metrics.get(key[monitor], float("nan")))


class _Throttle:
    """Call a callback at most every ``interval`` seconds (callbacks may hit the DB)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = -math.inf

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            return True
        return False


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-step learning-rate schedule of ``config`` for a run of ``total_steps`` steps.

    One-cycle warms up over 10 % of the steps, but at least two: PyTorch's ``OneCycleLR``
    divides by ``pct_start * total_steps - 1``, so with a fixed 10 % warm-up a run of
    exactly 10 steps (a small dataset) fails on its first step. Runs too short to warm up
    (under 4 steps) use the cosine schedule.
    """
    if config.schedule == "onecycle" and total_steps >= 4:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=total_steps,
            pct_start=max(0.1, 2.0 / total_steps),
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)


def _check_spec(spec: ModelSpec, config: TrainConfig) -> None:
    """The architecture fields of ``spec`` must be those of ``config``."""
    mismatch = [
        name
        for name, a, b in (
            ("encoder", spec.encoder, config.encoder),
            ("in_kinds", tuple(spec.channel_kinds), tuple(config.in_kinds)),
            ("context_slices", spec.context_slices, config.context_slices),
            ("projection_kinds", spec.projection_kinds, _projections(config)),
            ("image_size", spec.image_size, config.image_size),
        )
        if a != b
    ]
    if mismatch:
        raise ValueError(f"spec and config disagree on {', '.join(mismatch)}")


def _device_for(config: TrainConfig) -> torch.device:
    device = resolve_device(config.device)
    if device.type == "cpu":
        torch.set_num_threads(config.num_threads or _cpu_count())
    else:
        # Speed over bit-exact reproducibility on GPU: autotuned convolution kernels.
        torch.backends.cudnn.benchmark = True
    return device


@dataclass
class _Plan:
    """How long a run lasts: steps per epoch, epochs, steps, validation cadence, deadline."""

    steps_per_epoch: int
    epochs: int
    total_steps: int
    validate_every: int
    min_epochs: int
    deadline: float

    @classmethod
    def of(cls, n_slices: int, config: TrainConfig, started: float) -> _Plan:
        # BatchNorm cannot train on a batch of one slice: a trailing single slice is dropped.
        per_epoch = max(
            1, n_slices // config.batch_size + (1 if n_slices % config.batch_size >= 2 else 0)
        )
        # The budget is in steps: small datasets get more epochs (see TrainConfig.min_steps).
        epochs = max(config.epochs, math.ceil(config.min_steps / per_epoch))
        return cls(
            steps_per_epoch=per_epoch,
            epochs=epochs,
            total_steps=max(1, per_epoch * epochs),
            validate_every=max(
                1, config.validate_every, math.ceil(config.validate_every_steps / per_epoch)
            ),
            min_epochs=epochs // 2 if config.min_epochs is None else config.min_epochs,
            deadline=started + config.max_minutes * 60.0 if config.max_minutes else math.inf,
        )


class _Clock:
    """Counts steps, reports progress (at most twice a second), polls for cancellation
    (about once a second) and watches the wall-clock budget."""

    def __init__(
        self,
        plan: _Plan,
        *,
        on_progress: Callable[[float], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.plan, self.on_progress, self.should_stop = plan, on_progress, should_stop
        self.step = 0
        self.progress_throttle, self.stop_throttle = _Throttle(0.5), _Throttle(1.0)

    def tick(self) -> Literal["cancelled", "budget"] | None:
        """After a step: why the run must stop now, or None."""
        self.step += 1
        if self.on_progress is not None and self.progress_throttle.due():
            self.on_progress(min(1.0, self.step / self.plan.total_steps))
        if self.should_stop is not None and self.stop_throttle.due() and self.should_stop():
            return "cancelled"
        if time.perf_counter() > self.plan.deadline:
            return "budget"
        return None


class _Stepper:
    """One optimiser step on a batch: augmentation on the device, mixed precision on CUDA,
    gradient scaling and clipping, the per-step schedule."""

    def __init__(
        self,
        *,
        model: nn.Module,
        loss_fn: SegmentationLoss,
        config: TrainConfig,
        device: torch.device,
        total_steps: int,
        image_channels: int,
    ) -> None:
        self.model, self.loss_fn, self.config = model, loss_fn, config
        self.image_channels = image_channels
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = make_scheduler(self.optimizer, config, total_steps)
        self.use_amp = config.amp and device.type == "cuda"
        self.amp_dtype = (
            torch.bfloat16 if self.use_amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )
        self.aug_gen = torch.Generator(device=device).manual_seed(config.seed + 1)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Trains on one batch; returns its loss (detached, on the device: no host sync)."""
        config = self.config
        xb = xb.to(dtype=torch.float32)
        if config.augment.enabled:
            with torch.no_grad():
                xb, yb = augment_batch(
                    xb, yb, config.augment, generator=self.aug_gen,
                    image_channels=self.image_channels,
                )  # fmt: skip
        xb = xb.contiguous(memory_format=self.memory_format)
        with torch.autocast(self.device_type, dtype=self.amp_dtype, enabled=self.use_amp):
            logits = self.model(xb)
        loss = self.loss_fn(logits, yb)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if config.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        detached: torch.Tensor = loss.detach()
        return detached


@dataclass
class _Best:
    """The best epoch so far: its score, metrics and weights, and validations since."""

    score: float = -math.inf
    epoch: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None
    stale: int = 0

    def offer(self, score: float, epoch: int, metrics: dict[str, float], model: nn.Module) -> bool:
        """Keeps ``model``'s weights when ``score`` beats the best; True when it did. A NaN
        score (no validation this epoch) changes nothing."""
        if math.isnan(score):
            return False
        if score > self.score:
            self.score, self.epoch, self.metrics, self.stale = score, epoch, metrics, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return True
        self.stale += 1
        return False


def train(
    *,
    train_cases: Sequence[CaseArrays],
    val_cases: Sequence[CaseArrays],
    spec: ModelSpec,
    config: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_path: Path | None = None,
) -> TrainResult:
    """Train the U-Net of ``spec`` on ``train_cases``, validating on ``val_cases``.

    The hot loop only indexes in-memory tensors, augments whole batches on the training
    device and steps the optimiser; no per-sample Python work and no host sync per step
    (the loss is accumulated on device). Callbacks are throttled.

    Args:
        train_cases: annotated training cases.
        val_cases: annotated validation cases (may be empty: then the last epoch is "best"
            and the score is the negated training loss).
        spec: model spec; must agree with the architecture fields of ``config``.
        config: hyper-parameters.
        on_epoch: called after each epoch with its report.
        on_progress: called with the run's progress in ``[0, 1]`` (at most twice a second).
        should_stop: polled about once a second; returning True cancels the run after the
            current step (the best checkpoint so far is kept).
        checkpoint_path: where to write the best epoch's checkpoint (atomically).

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: spec/config disagree, or there is no training slice.
    """
    _check_spec(spec, config)
    started = time.perf_counter()
    device = _device_for(config)
    seed_everything(config.seed)

    dataset = build_slice_dataset(
        train_cases,
        spec,
        empty_ratio=config.empty_ratio,
        seed=config.seed,
        storage_dtype=getattr(torch, config.storage_dtype),
    )
    n = len(dataset)
    if n < 2:
        raise ValueError("training needs at least two slices")
    x_all, y_all = dataset.x, dataset.y
    if device.type == "cuda":
        # One transfer up front; every batch is then a device-side gather.
        x_all, y_all = x_all.to(device), y_all.to(device)

    model = build_from_spec(spec).to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    weights = class_weights_from_counts(
        label_counts(dataset.y, spec.classes),
        max_weight=config.max_class_weight,
        small_lesion_boost=config.lesion_class_boost,
    )
    loss_fn = SegmentationLoss(
        class_weights=weights.to(device),
        ce_weight=config.ce_weight,
        dice_weight=config.dice_weight,
        lesion_dice_weight=config.lesion_dice_weight,
    )
    plan = _Plan.of(n, config, started)
    stepper = _Stepper(
        model=model,
        loss_fn=loss_fn,
        config=config,
        device=device,
        total_steps=plan.total_steps,
        image_channels=spec.intensity_channels,
    )
    sample_gen = torch.Generator().manual_seed(config.seed)
    predictor = Predictor(model, spec, device, backend="eager", channels_last=config.channels_last)

    history: list[EpochReport] = []
    best = _Best()
    stopped_early = cancelled = budget_exhausted = False
    clock = _Clock(plan, on_progress=on_progress, should_stop=should_stop)

    for epoch in range(1, plan.epochs + 1):
        t_epoch = time.perf_counter()
        model.train()
        order = dataset.epoch_indices(
            sample_gen,
            lesion_fraction=config.lesion_fraction,
            balance_etiology=config.balance_etiology,
        )
        if device.type == "cuda":
            order = order.to(device)
        loss_sum = torch.zeros((), device=device)
        n_steps = 0
        for start in range(0, n, config.batch_size):
            index = order[start : start + config.batch_size]
            if index.numel() < 2:
                break
            loss_sum += stepper(x_all[index], y_all[index])
            n_steps += 1
            stop = clock.tick()
            if stop is not None:
                cancelled, budget_exhausted = stop == "cancelled", stop == "budget"
                break
        train_seconds = time.perf_counter() - t_epoch
        train_loss = float(loss_sum) / max(1, n_steps)

        t_val = time.perf_counter()
        metrics: dict[str, float] = {}
        last = epoch == plan.epochs or cancelled or budget_exhausted
        if val_cases and (epoch % plan.validate_every == 0 or last):
            metrics = evaluate(predictor, val_cases, spec)
            score = _score(metrics, config.monitor)
        elif not val_cases:
            score = -train_loss
        else:
            score = float("nan")
        val_seconds = time.perf_counter() - t_val

        is_best = best.offer(score, epoch, metrics, model)
        if is_best and checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model=model,
                spec=spec,
                epoch=epoch,
                metrics={**metrics, "score": score, "train_loss": train_loss},
                config=config.to_dict(),
            )
        report = EpochReport(
            epoch=epoch,
            train_loss=train_loss,
            lr=stepper.lr,
            metrics=metrics,
            score=score,
            is_best=is_best,
            train_seconds=train_seconds,
            val_seconds=val_seconds,
            steps=clock.step,
            planned_steps=plan.total_steps,
        )
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
        if cancelled or budget_exhausted:
            break
        if (
            config.early_stopping_patience
            and best.stale >= config.early_stopping_patience
            and plan.min_epochs <= epoch < plan.epochs  # the last epoch ends the run anyway
        ):
            stopped_early = True
            break

    if best.state is not None:
        model.load_state_dict(best.state)
    model.eval()
    if on_progress is not None:
        on_progress(1.0)
    return TrainResult(
        model=model,
        spec=spec,
        best_epoch=best.epoch,
        best_score=best.score,
        best_metrics=best.metrics,
        history=history,
        stopped_early=stopped_early,
        cancelled=cancelled,
        checkpoint_path=checkpoint_path if best.state is not None else None,
        device=str(device),
        total_seconds=time.perf_counter() - started,
        n_train_slices=n,
        steps=clock.step,
        planned_steps=plan.total_steps,
        undertrained=clock.step < config.min_steps,
        budget_exhausted=budget_exhausted,
    )
