"""Case splits, slice datasets and sampling (inference.ml.data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from inference.ml.data import (
    SliceDataset,
    build_slice_dataset,
    mask_to_classes,
    split_cases,
)

from .helpers import LABELS, synthetic_case, tiny_spec


def test_split_by_case_is_stratified_deterministic_and_leak_free() -> None:
    ids = [f"case{i:03d}" for i in range(90)]
    labels = [LABELS[i % 3] for i in range(90)]
    split = split_cases(ids, labels, seed=7)
    assert set(split) == set(ids) and set(split.values()) == {"train", "val", "test"}
    groups = {s: {c for c, v in split.items() if v == s} for s in ("train", "val", "test")}
    assert not (groups["train"] & groups["val"] or groups["train"] & groups["test"])
    assert not groups["val"] & groups["test"]
    for label in LABELS[:3]:  # 30 cases each: 21 / 4.5 / 4.5 ideal
        members = [c for c, lab in zip(ids, labels, strict=True) if lab == label]
        counts = [sum(split[c] == s for c in members) for s in ("train", "val", "test")]
        assert counts[0] == 21 and {counts[1], counts[2]} <= {4, 5}
    order = np.random.default_rng(1).permutation(90)
    again = split_cases([ids[i] for i in order], [labels[i] for i in order], seed=7)
    assert again == split
    assert split_cases(ids, labels, seed=8) != split
    with pytest.raises(ValueError, match="unique"):
        split_cases(["a", "a"], [1, 1])


def test_slice_dataset_keeps_lesion_slices_and_oversamples() -> None:
    cases = [
        synthetic_case("c0", LABELS[0], 0, (10, 40, 40)),
        synthetic_case("c1", LABELS[1], 1, (10, 36, 44)),
    ]
    spec = tiny_spec()  # depth 3: sizes padded to a common multiple of 8
    ds = build_slice_dataset(cases, spec, empty_ratio=0.5)
    assert ds.x.shape[1:] == (spec.in_channels, 40, 48) and ds.y.dtype == torch.long
    per_case = [int(np.any(c.mask, axis=(1, 2)).sum()) for c in cases if c.mask is not None]
    assert int(ds.lesion.sum()) == sum(per_case)
    assert len(ds) == sum(n + math.ceil(0.5 * n) for n in per_case)
    full = build_slice_dataset(cases, spec, keep_all_slices=True)
    assert len(full) == 20
    idx = full.epoch_indices(torch.Generator().manual_seed(0), lesion_fraction=0.8)
    assert len(idx) == 20 and float(full.lesion[idx].float().mean()) > 0.5
    assert full.case_etiology is not None
    assert full.case_etiology.tolist() == [LABELS[0], LABELS[1]]
    with pytest.raises(ValueError, match="not labels"):
        mask_to_classes(np.array([[[0, 9]]], dtype=np.uint8), spec)


def test_etiology_balanced_sampling_gives_every_etiology_the_same_share() -> None:
    # Case 0 (etiology 1) has 9 lesion slices, case 1 (etiology 4, lacune-like) only 1;
    # 10 empty slices in case 0.
    lesion = torch.tensor([True] * 9 + [True] + [False] * 10)
    case_index = torch.tensor([0] * 9 + [1] + [0] * 10)
    n = len(lesion)
    ds = SliceDataset(
        x=torch.zeros(n, 1, 2, 2),
        y=torch.zeros(n, 2, 2, dtype=torch.long),
        lesion=lesion,
        case_index=case_index,
        slice_index=torch.arange(n),
        case_ids=["a", "b"],
        case_etiology=torch.tensor([1, 4]),
    )
    draws = torch.cat(
        [
            ds.epoch_indices(g, lesion_fraction=0.8, balance_etiology=True)
            for g in [torch.Generator().manual_seed(s) for s in range(200)]
        ]
    )
    share_rare = float((draws == 9).float().mean())
    share_lesion = float(lesion[draws].float().mean())
    assert abs(share_rare - 0.4) < 0.03  # half of the 0.8 lesion share
    assert abs(share_lesion - 0.8) < 0.03
    plain = torch.cat(
        [
            ds.epoch_indices(torch.Generator().manual_seed(s), lesion_fraction=0.8)
            for s in range(200)
        ]
    )
    assert abs(float((plain == 9).float().mean()) - 0.08) < 0.02
    # Without a lesion fraction all slices are balanced per etiology.
    only = torch.cat(
        [
            ds.epoch_indices(torch.Generator().manual_seed(s), balance_etiology=True)
            for s in range(200)
        ]
    )
    assert abs(float((only == 9).float().mean()) - 0.5) < 0.03
    # No etiology known: the option falls back to the plain permutation.
    ds.case_etiology = None
    perm = ds.epoch_indices(torch.Generator().manual_seed(0), balance_etiology=True)
    assert sorted(perm.tolist()) == list(range(n))


# --------------------------------------------------------------------------- metrics
