"""Case arrays, deterministic stratified case-level splits and in-memory slice datasets."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import Dataset

from inference.ml.losses import UNKNOWN_LESION
from inference.ml.networks import ModelSpec
from inference.ml.transforms import (
    Geometry,
    _padding,
    fit_images,
    fit_masks,
    resampled_size,
    stack_for_spec,
)

SplitName = Literal["train", "val", "test"]
K = TypeVar("K", bound=Hashable)


@dataclass
class CaseArrays:
    """One case as arrays, the unit the services hand to training and prediction.

    Attributes:
        case_id: stable identifier (the Case primary key as text).
        volumes: ``{"DWI"|"ADC"|"FLAIR": float32 (z, y, x)}``, co-registered.
        mask: uint8 ``(z, y, x)`` label values (0 = background), or ``None``.
        spacing: ``(z, y, x)`` voxel size in mm.
        etiology: confirmed case-level label value, or ``None``.
        etiology_known: ``False`` for a mask drawn on a case without a confirmed etiology
            (semi-supervised training): its lesion voxels teach where lesions are, with the
            etiology part of the loss masked (``losses.UNKNOWN_LESION``); whatever label
            values the mask carries are ignored.
        affine: ``(k, j, i, 1)`` -> RAS mm matrix of the grid (for the lesion pattern's
            registration to MNI), or ``None``.
    """

    case_id: str
    volumes: Mapping[str, npt.NDArray[Any]]
    mask: npt.NDArray[np.uint8] | None = None
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    etiology: int | None = None
    etiology_known: bool = True
    affine: npt.NDArray[np.float64] | None = None


# --------------------------------------------------------------------------- splits


def _stratum_seed(seed: int, stratum: str) -> int:
    # hashlib, not hash(): str hashes are salted per process and would break determinism.
    digest = hashlib.sha256(f"{seed}|{stratum}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def split_cases(
    case_ids: Sequence[K],
    labels: Sequence[Hashable],
    *,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[K, SplitName]:
    """Assign every CASE (never a slice) to train/val/test, stratified by etiology.

    Within each etiology stratum the cases are sorted by id, shuffled with a seed derived
    from ``(seed, stratum)`` and assigned by systematic sampling: case ``j`` of ``n`` falls at
    quantile ``(j + u) / n`` (``u`` a seeded offset in ``[0, 1)``) and goes to the split
    whose cumulative fraction covers it. Each stratum therefore gets within one case of its
    ideal share in every split, and the result depends only on the set of
    ``(case_id, label)`` pairs and ``seed`` — not on input order or the process.

    Adding cases to a stratum can move other cases of that stratum; freeze a split (the
    dataset snapshot) once training has used it.

    Args:
        case_ids: unique case identifiers.
        labels: etiology per case (``None`` is its own stratum).
        fractions: train, val and test fractions, non-negative, summing to 1.
        seed: split seed.

    Returns:
        ``{case_id: "train" | "val" | "test"}``.

    Raises:
        ValueError: length mismatch, duplicate ids or invalid fractions.
    """
    if len(case_ids) != len(labels):
        raise ValueError("case_ids and labels must have the same length")
    if len(set(case_ids)) != len(case_ids):
        raise ValueError("case ids must be unique")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("fractions must be three non-negative numbers summing to 1")
    strata: dict[str, list[K]] = {}
    for case_id, label in zip(case_ids, labels, strict=True):
        strata.setdefault(repr(label), []).append(case_id)
    bounds = (fractions[0], fractions[0] + fractions[1])
    result: dict[K, SplitName] = {}
    for stratum, members in strata.items():
        ordered = sorted(members, key=repr)
        rng = np.random.default_rng(_stratum_seed(seed, stratum))
        order = rng.permutation(len(ordered))
        offset = float(rng.random())
        n = len(ordered)
        for position, index in enumerate(order):
            q = (position + offset) / n
            name: SplitName = "train" if q < bounds[0] else "val" if q < bounds[1] else "test"
            result[ordered[int(index)]] = name
    return result


# --------------------------------------------------------------------------- slice datasets


def label_lookup(spec: ModelSpec) -> npt.NDArray[np.int64]:
    """Table mapping mask values (0..255) to class indices; -1 marks unknown values."""
    lut = np.full(256, -1, dtype=np.int64)
    lut[0] = 0
    for index, value in enumerate(spec.label_values, start=1):
        lut[value] = index
    return lut


def mask_to_classes(mask: npt.NDArray[Any], spec: ModelSpec) -> npt.NDArray[np.int64]:
    """Map a label-value mask to class indices of ``spec``.

    Raises:
        ValueError: when the mask holds values that are not labels of ``spec`` (a mask drawn
            with another label set must not silently train as background).
    """
    values = np.asarray(mask)
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise ValueError("mask values must be in 0..255")
    classes = label_lookup(spec)[values.astype(np.int64, copy=False)]
    if (classes < 0).any():
        unknown = sorted({int(v) for v in np.unique(values[classes < 0])})
        raise ValueError(f"mask values {unknown} are not labels of the model spec")
    return classes


@dataclass
class SliceDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """2-D slices of many cases as in-memory tensors (training reads batches by indexing).

    Attributes:
        x: images ``(N, C, H, W)`` (float32 unless built with another storage dtype).
        y: class-index masks ``(N, H, W)`` int64.
        lesion: ``(N,)`` bool, slice contains any lesion voxel.
        case_index: ``(N,)`` index into ``case_ids``.
        slice_index: ``(N,)`` z index within its case.
        case_ids: ids of the source cases.
        case_etiology: ``(len(case_ids),)`` int64 etiology label value per case (-1 when
            unknown), or ``None``; used by etiology-balanced sampling.
    """

    x: torch.Tensor
    y: torch.Tensor
    lesion: torch.Tensor
    case_index: torch.Tensor
    slice_index: torch.Tensor
    case_ids: list[str]
    case_etiology: torch.Tensor | None = None

    def __len__(self) -> int:
        """Number of slices."""
        return int(self.x.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image (C, H, W), mask (H, W))`` of one slice."""
        return self.x[index], self.y[index]

    def epoch_indices(
        self,
        generator: torch.Generator,
        *,
        lesion_fraction: float | None = None,
        balance_etiology: bool = False,
    ) -> torch.Tensor:
        """Slice order for one epoch (``len(self)`` indices).

        Args:
            generator: CPU generator (seeded by the trainer).
            lesion_fraction: ``None`` for a plain permutation; otherwise indices are drawn
                with replacement so that this expected fraction are lesion slices
                (oversampling the rare lesion slices without copying them).
            balance_etiology: draw lesion slices (all slices when ``lesion_fraction`` is
                ``None``) so that every case etiology gets the same expected share. Lacunes
                touch one or two slices per case, territorial infarcts many, so a plain
                draw shows the network few lacunar slices per epoch even with equal case
                counts. Empty slices stay uniform (they only teach background).

        Returns:
            int64 index tensor.
        """
        n = len(self)
        n_lesion = int(self.lesion.sum())
        balance = balance_etiology and self.case_etiology is not None
        if (lesion_fraction is None or n_lesion in (0, n)) and not balance:
            return torch.randperm(n, generator=generator)
        if lesion_fraction is None or n_lesion in (0, n):
            weights = self._etiology_balanced(torch.ones(n, dtype=torch.bool))
        else:
            lesion_w = (
                self._etiology_balanced(self.lesion) if balance else self.lesion.double() / n_lesion
            )
            weights = torch.where(
                self.lesion,
                lesion_fraction * lesion_w,
                torch.tensor((1.0 - lesion_fraction) / (n - n_lesion), dtype=torch.float64),
            )
        return torch.multinomial(weights, n, replacement=True, generator=generator)

    def _etiology_balanced(self, member: torch.Tensor) -> torch.Tensor:
        """Float64 weights over the ``member`` slices summing to 1, equal per etiology."""
        assert self.case_etiology is not None
        etiology = self.case_etiology[self.case_index]
        weights = torch.zeros(len(self), dtype=torch.float64)
        groups = torch.unique(etiology[member])
        for g in groups:
            in_group = member & (etiology == g)
            weights[in_group] = 1.0 / (len(groups) * int(in_group.sum()))
        return weights


def common_geometry(
    sizes: Sequence[tuple[int, int]],
    spec: ModelSpec,
    spacings: Sequence[tuple[float, float]] | None = None,
) -> list[Geometry]:
    """Per-case geometries that bring all slices to ONE network size (so they stack).

    With ``spec.image_size`` every case is resized to it; with ``spec.target_spacing`` (and
    each case's in-plane ``spacings``) every case is resampled to that pixel size, then all
    are padded to the largest height/width, rounded up to :attr:`ModelSpec.size_multiple`;
    otherwise every case is padded the same way as it is.
    """
    if spec.image_size is not None:
        size = spec.image_size
        return [Geometry(s, size, (0, 0, 0, 0), True) for s in sizes]
    inners: list[tuple[int, int] | None] = [None] * len(sizes)
    if spec.target_spacing is not None and spacings is not None:
        inners = [
            resampled_size(s, sp, spec.target_spacing)
            for s, sp in zip(sizes, spacings, strict=True)
        ]
    fitted = [inner or size for inner, size in zip(inners, sizes, strict=True)]
    m = spec.size_multiple
    th = -(-max(s[0] for s in fitted) // m) * m
    tw = -(-max(s[1] for s in fitted) // m) * m
    return [
        Geometry(size, (th, tw), _padding(fit, (th, tw)), False, inner)
        for size, fit, inner in zip(sizes, fitted, inners, strict=True)
    ]


def _fit_case(
    stack: npt.NDArray[np.float32], mask: npt.NDArray[np.int64], geometry: Geometry
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """One case's slices and masks fitted to the network geometry (no-op when they fit)."""
    x = fit_images(torch.from_numpy(stack), geometry).numpy()
    y = fit_masks(torch.from_numpy(mask), geometry).numpy()
    return x, y


def build_slice_dataset(
    cases: Sequence[CaseArrays],
    spec: ModelSpec,
    *,
    keep_all_slices: bool = False,
    empty_ratio: float = 0.5,
    seed: int = 0,
    storage_dtype: torch.dtype = torch.float32,
) -> SliceDataset:
    """Turn annotated cases into an in-memory :class:`SliceDataset`.

    Every lesion slice is kept. Lesions span a few of ~25 slices, so keeping every empty
    slice would drown them; by default each case keeps ``ceil(empty_ratio * lesion slices)``
    randomly chosen empty slices (still teaching the network that healthy tissue is
    background). Further oversampling happens per epoch in
    :meth:`SliceDataset.epoch_indices`.

    Args:
        cases: cases with masks.
        spec: model spec (channels, labels, geometry).
        keep_all_slices: keep every slice (validation/benchmarks).
        empty_ratio: empty slices kept per lesion slice of the same case.
        seed: seed of the empty-slice choice.
        storage_dtype: dtype of ``x`` (``torch.float16`` halves memory for big datasets).

    Returns:
        The dataset.

    Raises:
        ValueError: a case without mask, masks off the image grid, or unknown mask values.
    """
    if not cases:
        raise ValueError("no cases given")
    rng = np.random.default_rng(seed)
    stacks: list[npt.NDArray[np.float32]] = []
    masks: list[npt.NDArray[np.int64]] = []
    chosen: list[npt.NDArray[np.int64]] = []
    for case in cases:
        if case.mask is None:
            raise ValueError(f"case {case.case_id} has no mask")
        stack = stack_for_spec(case.volumes, spec)
        if tuple(case.mask.shape) != (stack.shape[0], *stack.shape[2:]):
            raise ValueError(f"case {case.case_id}: mask shape differs from the images")
        if case.etiology_known:
            classes = mask_to_classes(case.mask, spec)
        else:
            classes = np.where(case.mask > 0, UNKNOWN_LESION, 0).astype(np.int64)
        has_lesion = classes.reshape(classes.shape[0], -1).any(axis=1)
        lesion_z = np.flatnonzero(has_lesion)
        empty_z = np.flatnonzero(~has_lesion)
        if not keep_all_slices:
            n_empty = min(len(empty_z), math.ceil(empty_ratio * len(lesion_z)))
            empty_z = np.sort(rng.choice(empty_z, size=n_empty, replace=False))
        z = np.sort(np.concatenate((lesion_z, empty_z)))
        stacks.append(stack[z])
        masks.append(classes[z])
        chosen.append(z)
        size = (stack.shape[2], stack.shape[3])
        if spec.image_size is not None:
            # Resizing needs no other case: shrink now so full-size stacks never pile up.
            geometry = common_geometry([size], spec)[0]
            stacks[-1], masks[-1] = _fit_case(stacks[-1], masks[-1], geometry)
        elif spec.target_spacing is not None:
            # Resample to the network's pixel size now; the padding to a common size below.
            inner = resampled_size(size, case.spacing[1:], spec.target_spacing)
            geometry = Geometry(size, inner, (0, 0, 0, 0), False, inner)
            stacks[-1], masks[-1] = _fit_case(stacks[-1], masks[-1], geometry)
    # Spacings are left out: every stack is on the network's pixel size by now.
    geometries = common_geometry([(s.shape[2], s.shape[3]) for s in stacks], spec)
    xs, ys = [], []
    for stack, mask, geometry in zip(stacks, masks, geometries, strict=True):
        x_case, y_case = _fit_case(stack, mask, geometry)
        xs.append(torch.from_numpy(x_case).to(storage_dtype))
        ys.append(torch.from_numpy(y_case))
    y = torch.cat(ys)
    return SliceDataset(
        x=torch.cat(xs),
        y=y,
        lesion=y.reshape(y.shape[0], -1).any(dim=1),
        case_index=torch.cat(
            [torch.full((len(z),), i, dtype=torch.int64) for i, z in enumerate(chosen)]
        ),
        slice_index=torch.from_numpy(np.concatenate(chosen).astype(np.int64)),
        case_ids=[c.case_id for c in cases],
        case_etiology=torch.tensor(
            [-1 if c.etiology is None or not c.etiology_known else int(c.etiology) for c in cases],
            dtype=torch.int64,
        ),
    )
