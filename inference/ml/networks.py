"""U-Net construction, the JSON-serialisable model spec and atomic checkpoint I/O."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Checkpoint format identifier and version written into every checkpoint file.
CHECKPOINT_FORMAT = "strokeaid-unet"
CHECKPOINT_VERSION = 1

#: The research group's model is "about 6.5 M parameters"; a mobilenet_v2 U-Net with the
#: default smp decoder has 6.63 M (3 input channels, 6 classes), so it is the default.
DEFAULT_ENCODER = "mobilenet_v2"
DEFAULT_DECODER_CHANNELS: tuple[int, ...] = (256, 128, 64, 32, 16)
DEFAULT_KINDS: tuple[str, ...] = ("DWI", "ADC", "FLAIR")
#: Physics-prior channels a spec may ask for (see ``ModelSpec.prior_channels``).
PRIOR_CHANNELS: tuple[str, ...] = ("adc_core",)


class ModelLoadError(Exception):
    """A weights file is missing, unreadable, corrupt or does not match its spec."""


@dataclass(frozen=True)
class NormalisationSpec:
    """How each series is normalised before it enters the network.

    Attributes:
        method: only ``"robust_zscore"`` (clip to percentiles inside a foreground mask, then
            z-score with the clipped foreground mean/std).
        lower_pct: lower clipping percentile (0-100) computed inside the foreground. The
            default 0 clips only the air (to the darkest foreground value): restricted
            diffusion makes acute lesions the DARKEST tissue on ADC and clipping them would
            erase the very contrast that confirms an infarct.
        upper_pct: upper clipping percentile (0-100) computed inside the foreground; tames
            hot voxels (vessels, artefacts) so they do not set the scale.
        foreground_fraction: a voxel is foreground when brighter than
            ``min + foreground_fraction * (p99 - min)`` of its own series.
    """

    method: str = "robust_zscore"
    lower_pct: float = 0.0
    upper_pct: float = 99.5
    foreground_fraction: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "method": self.method,
            "lower_pct": self.lower_pct,
            "upper_pct": self.upper_pct,
            "foreground_fraction": self.foreground_fraction,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NormalisationSpec:
        """Build from :meth:`to_dict` output; unknown keys are ignored."""
        spec = cls(
            method=str(data.get("method", "robust_zscore")),
            lower_pct=float(data.get("lower_pct", 0.0)),
            upper_pct=float(data.get("upper_pct", 99.5)),
            foreground_fraction=float(data.get("foreground_fraction", 0.1)),
        )
        if spec.method != "robust_zscore":
            raise ValueError(f"unknown normalisation method {spec.method!r}")
        if not 0.0 <= spec.lower_pct < spec.upper_pct <= 100.0:
            raise ValueError("normalisation percentiles must satisfy 0 <= lower < upper <= 100")
        return spec


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a network and feed it: stored next to the weights.

    Class index ``i`` (1..K) of the network output is the label with value
    ``label_values[i - 1]``; index 0 is background. Input channels are, in order: for each
    kind in ``channel_kinds`` its slices ``z - context_slices .. z + context_slices``, then
    one whole-volume maximum-intensity projection per kind in ``projection_kinds``, then
    (when ``presence_flags``) one constant 0/1 channel per kind telling whether that series
    was present.

    Attributes:
        label_values: mask values of the foreground labels (e.g. ``(1, 2, 3, 4, 5)``).
        label_names: display names, same order as ``label_values``.
        channel_kinds: series kinds used as input (``"DWI"``, ``"ADC"``, ``"FLAIR"``).
        context_slices: neighbouring slices on each side used as extra channels (2.5D).
        projection_kinds: kinds (a subset of ``channel_kinds``) whose maximum-intensity
            projection along z is added to every slice as global context. A 2-D network sees
            one slice, but the etiology is a whole-brain pattern (several territories, both
            hemispheres, a chain of lesions): the DWI projection shows every bright lesion
            of the case on each slice. ``()`` (older models) adds none.
        presence_flags: append one presence channel per kind (missing series -> zeros).
        encoder: smp encoder name.
        encoder_depth: encoder stages (3-5); inputs must be multiples of ``2**depth``.
        decoder_channels: smp decoder widths, one per stage.
        image_size: ``(H, W)`` the slices are resized to, or ``None`` to pad to a multiple
            of ``2**encoder_depth`` and crop back (no resampling).
        normalisation: intensity normalisation settings.
        architecture: smp architecture, only ``"Unet"``.
        prior_channels: physics priors appended after the intensities (before the presence
            flags): ``"adc_core"`` = the soft ADC < 620 x 10^-6 mm^2/s core map of
            :func:`inference.ml.brain.core_prior`, with the ADC unit detected. ``()`` (older
            models) adds none.
        brain_masking: normalise every series inside the brain mask computed from the
            images (:func:`inference.ml.brain.brain_mask`) and drop predicted lesion voxels
            outside it. ``False`` (older models): per-series foreground threshold, no drop.
        target_spacing: in-plane pixel size in mm every slice is resampled to before the
            network (and the output back to the series grid), so 128^2 / 256^2 / 512^2
            matrices and 0.5-2 mm pixels look alike; ``None`` (older models) feeds pixels
            as they are.
    """

    label_values: tuple[int, ...]
    label_names: tuple[str, ...]
    channel_kinds: tuple[str, ...] = DEFAULT_KINDS
    context_slices: int = 0
    projection_kinds: tuple[str, ...] = ()
    presence_flags: bool = True
    encoder: str = DEFAULT_ENCODER
    encoder_depth: int = 5
    decoder_channels: tuple[int, ...] = DEFAULT_DECODER_CHANNELS
    image_size: tuple[int, int] | None = None
    normalisation: NormalisationSpec = field(default_factory=NormalisationSpec)
    architecture: str = "Unet"
    prior_channels: tuple[str, ...] = ()
    brain_masking: bool = False
    target_spacing: float | None = None

    def __post_init__(self) -> None:
        """Validate invariants early so a bad spec never reaches training or the registry."""
        if len(self.label_values) == 0:
            raise ValueError("a model needs at least one foreground label")
        if len(self.label_values) != len(self.label_names):
            raise ValueError("label_values and label_names must have the same length")
        if len(set(self.label_values)) != len(self.label_values):
            raise ValueError("label_values must be unique")
        if any(v <= 0 or v > 255 for v in self.label_values):
            raise ValueError("label values must be in 1..255 (0 is background, masks are uint8)")
        if len(self.channel_kinds) == 0 or len(set(self.channel_kinds)) != len(self.channel_kinds):
            raise ValueError("channel_kinds must be a non-empty list of distinct kinds")
        if self.context_slices < 0:
            raise ValueError("context_slices must be >= 0")
        if len(set(self.projection_kinds)) != len(self.projection_kinds) or not set(
            self.projection_kinds
        ) <= set(self.channel_kinds):
            raise ValueError("projection_kinds must be distinct kinds from channel_kinds")
        if not 1 <= self.encoder_depth <= 5:
            raise ValueError("encoder_depth must be in 1..5")
        if len(self.decoder_channels) != self.encoder_depth:
            raise ValueError("decoder_channels needs one width per encoder stage")
        if self.image_size is not None:
            h, w = self.image_size
            if h % self.size_multiple or w % self.size_multiple:
                raise ValueError(f"image_size must be a multiple of {self.size_multiple}")
        if self.architecture != "Unet":
            raise ValueError(f"unsupported architecture {self.architecture!r}")
        unknown = sorted(set(self.prior_channels) - set(PRIOR_CHANNELS))
        if unknown or len(set(self.prior_channels)) != len(self.prior_channels):
            raise ValueError(f"prior_channels must be distinct names among {list(PRIOR_CHANNELS)}")
        if "adc_core" in self.prior_channels and "ADC" not in self.channel_kinds:
            raise ValueError("the adc_core prior needs ADC among channel_kinds")
        if self.target_spacing is not None and not 0.1 <= self.target_spacing <= 10.0:
            raise ValueError("target_spacing must be between 0.1 and 10 mm")
        if self.target_spacing is not None and self.image_size is not None:
            raise ValueError("image_size and target_spacing exclude each other")

    @property
    def intensity_channels(self) -> int:
        """Leading input channels that carry image intensities (slices and projections)."""
        return len(self.channel_kinds) * (2 * self.context_slices + 1) + len(self.projection_kinds)

    @property
    def in_channels(self) -> int:
        """Number of network input channels implied by kinds, context, projections, flags."""
        flags = len(self.channel_kinds) if self.presence_flags else 0
        return self.intensity_channels + len(self.prior_channels) + flags

    @property
    def classes(self) -> int:
        """Number of network output classes (background + foreground labels)."""
        return len(self.label_values) + 1

    @property
    def size_multiple(self) -> int:
        """Spatial sizes the U-Net accepts must be multiples of this."""
        return int(2**self.encoder_depth)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (lists, not tuples; derived sizes included)."""
        return {
            "architecture": self.architecture,
            "encoder": self.encoder,
            "encoder_depth": self.encoder_depth,
            "decoder_channels": list(self.decoder_channels),
            "in_channels": self.in_channels,
            "channel_kinds": list(self.channel_kinds),
            "context_slices": self.context_slices,
            "projection_kinds": list(self.projection_kinds),
            "presence_flags": self.presence_flags,
            "classes": self.classes,
            "label_values": list(self.label_values),
            "label_names": list(self.label_names),
            "image_size": list(self.image_size) if self.image_size is not None else None,
            "normalisation": self.normalisation.to_dict(),
            "prior_channels": list(self.prior_channels),
            "brain_masking": self.brain_masking,
            "target_spacing": self.target_spacing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: when fields are missing or inconsistent (including stored
                ``in_channels``/``classes`` that disagree with the derived ones).
        """
        try:
            size = data.get("image_size")
            spec = cls(
                label_values=tuple(int(v) for v in data["label_values"]),
                label_names=tuple(str(n) for n in data["label_names"]),
                channel_kinds=tuple(str(k) for k in data.get("channel_kinds", DEFAULT_KINDS)),
                context_slices=int(data.get("context_slices", 0)),
                projection_kinds=tuple(str(k) for k in data.get("projection_kinds", ())),
                presence_flags=bool(data.get("presence_flags", True)),
                encoder=str(data.get("encoder", DEFAULT_ENCODER)),
                encoder_depth=int(data.get("encoder_depth", 5)),
                decoder_channels=tuple(
                    int(c) for c in data.get("decoder_channels", DEFAULT_DECODER_CHANNELS)
                ),
                image_size=(int(size[0]), int(size[1])) if size is not None else None,
                normalisation=NormalisationSpec.from_dict(data.get("normalisation", {})),
                architecture=str(data.get("architecture", "Unet")),
                prior_channels=tuple(str(k) for k in data.get("prior_channels", ())),
                brain_masking=bool(data.get("brain_masking", False)),
                target_spacing=(
                    float(data["target_spacing"])
                    if data.get("target_spacing") is not None
                    else None
                ),
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"invalid model spec: {exc!r}") from exc
        for key, derived in (("in_channels", spec.in_channels), ("classes", spec.classes)):
            if key in data and int(data[key]) != derived:
                raise ValueError(f"spec {key}={data[key]} disagrees with derived {derived}")
        return spec

    def label_name(self, value: int) -> str:
        """Display name of a label value."""
        return self.label_names[self.label_values.index(value)]


def build_unet(
    *,
    encoder: str = DEFAULT_ENCODER,
    in_channels: int,
    classes: int,
    encoder_depth: int = 5,
    decoder_channels: Sequence[int] = DEFAULT_DECODER_CHANNELS,
    weights_path: str | None = None,
) -> nn.Module:
    """Build a segmentation-models-pytorch U-Net with randomly initialised weights.

    No weights are ever downloaded (``encoder_weights=None``); pre-trained weights come from
    a local file instead.

    Args:
        encoder: smp encoder name (``"mobilenet_v2"`` gives ~6.6 M parameters).
        in_channels: input channels (see :attr:`ModelSpec.in_channels`).
        classes: output classes including background.
        encoder_depth: encoder stages (3-5).
        decoder_channels: decoder widths, one per stage.
        weights_path: optional local file holding either a full U-Net state dict, a
            Stroke AID checkpoint, or encoder-only weights (keys without ``encoder.``);
            tensors whose shapes do not fit (e.g. a 3-channel stem for a 9-channel input)
            are skipped so an ImageNet encoder can still seed a 2.5D model.

    Returns:
        The model (in training mode, on CPU).
    """
    # Imported lazily: importing smp costs seconds and most callers only need the spec.
    import segmentation_models_pytorch as smp

    model: nn.Module = smp.Unet(
        encoder_name=encoder,
        encoder_weights=None,
        encoder_depth=encoder_depth,
        decoder_channels=tuple(decoder_channels),
        in_channels=in_channels,
        classes=classes,
    )
    if weights_path is not None:
        _load_initial_weights(model, Path(weights_path))
    return model


def build_from_spec(spec: ModelSpec, *, weights_path: str | None = None) -> nn.Module:
    """Build the U-Net described by ``spec`` (see :func:`build_unet`)."""
    return build_unet(
        encoder=spec.encoder,
        in_channels=spec.in_channels,
        classes=spec.classes,
        encoder_depth=spec.encoder_depth,
        decoder_channels=spec.decoder_channels,
        weights_path=weights_path,
    )


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _load_initial_weights(model: nn.Module, path: Path) -> None:
    """Load full-model or encoder-only weights from a local file into ``model``."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"cannot read weights file {path}: {exc}") from exc
    if isinstance(raw, dict) and "state_dict" in raw:
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise ModelLoadError(f"{path} does not contain a state dict of tensors")
    state: dict[str, torch.Tensor] = raw
    if any(k.startswith("encoder.") for k in state):
        target, prefix = model.state_dict(), ""
    else:
        # Encoder-only weights (e.g. a timm/torchvision backbone saved locally).
        target, prefix = model.state_dict(), "encoder."
    usable = {
        prefix + k: v
        for k, v in state.items()
        if prefix + k in target and target[prefix + k].shape == v.shape
    }
    if not usable:
        raise ModelLoadError(f"no tensor in {path} fits the {type(model).__name__} model")
    model.load_state_dict(usable, strict=False)


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    spec: ModelSpec,
    epoch: int | None = None,
    metrics: Mapping[str, float] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically: temp file in the same folder, fsync, ``os.replace``.

    A killed process therefore leaves either the previous complete file or the new complete
    file, never a truncated one.

    The file is a ``torch.save`` dict, loadable with ``weights_only=True``::

        {"format": "strokeaid-unet", "format_version": 1, "spec": ModelSpec.to_dict(),
         "state_dict": {name: tensor}, "epoch": int | None, "metrics": {str: float},
         "config": {...} (TrainConfig.to_dict()), "created_at": ISO-8601 UTC}

    Args:
        path: destination file.
        model: the network (its state dict is saved from CPU copies).
        spec: the spec the network was built from.
        epoch: epoch the weights come from.
        metrics: validation metrics of that epoch.
        config: training hyper-parameters (JSON-like).

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "spec": spec.to_dict(),
        "state_dict": state,
        "epoch": epoch,
        "metrics": {k: float(v) for k, v in (metrics or {}).items() if math.isfinite(v)},
        "config": dict(config or {}),
        "created_at": datetime.now(UTC).isoformat(),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        # Also on KeyboardInterrupt: never leave the temp file behind.
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


@dataclass(frozen=True)
class Checkpoint:
    """A validated checkpoint read from disk.

    Attributes:
        spec: the model spec.
        state_dict: network weights.
        epoch: training epoch, if recorded.
        metrics: validation metrics, if recorded.
        config: training hyper-parameters, if recorded.
    """

    spec: ModelSpec
    state_dict: dict[str, torch.Tensor]
    epoch: int | None
    metrics: dict[str, float]
    config: dict[str, Any]


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ModelLoadError: missing/unreadable/corrupt file, wrong format or version, invalid
            spec, or a state dict that is not a mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"weights file {path} does not exist")
    try:
        # weights_only: a checkpoint must never be able to execute code when loaded.
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ModelLoadError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise ModelLoadError(f"{path} has unsupported checkpoint version {version!r}")
    try:
        spec = ModelSpec.from_dict(raw["spec"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"{path} has an invalid model spec: {exc}") from exc
    state = raw.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} has no valid state dict")
    epoch = raw.get("epoch")
    return Checkpoint(
        spec=spec,
        state_dict=state,
        epoch=int(epoch) if isinstance(epoch, int) else None,
        metrics=dict(raw.get("metrics") or {}),
        config=dict(raw.get("config") or {}),
    )


def load_model(path: Path) -> tuple[nn.Module, Checkpoint]:
    """Read a checkpoint and build its network with the weights loaded (eval mode, CPU).

    Raises:
        ModelLoadError: see :func:`read_checkpoint`; also when the weights do not match the
            network described by the spec (missing/unexpected keys, shape mismatch).
    """
    checkpoint = read_checkpoint(path)
    try:
        model = build_from_spec(checkpoint.spec)
    except Exception as exc:
        raise ModelLoadError(f"cannot build the network of {path}: {exc}") from exc
    try:
        model.load_state_dict(checkpoint.state_dict, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"weights in {path} do not match their spec: {exc}") from exc
    model.eval()
    return model, checkpoint
