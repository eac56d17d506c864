"""Tests of the pure PyTorch/numpy ML core (inference.ml): no database, no Django."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from inference.ml import metrics as M
from inference.ml.data import (
    CaseArrays,
    SliceDataset,
    build_slice_dataset,
    mask_to_classes,
    split_cases,
)
from inference.ml.losses import (
    SegmentationLoss,
    SoftDiceLoss,
    class_weights_from_counts,
    label_counts,
    lesion_dice_loss,
)
from inference.ml.networks import (
    ModelLoadError,
    ModelSpec,
    build_from_spec,
    build_unet,
    count_parameters,
    load_model,
    save_checkpoint,
)
from inference.ml.predictor import Predictor
from inference.ml.trainer import (
    EpochReport,
    TrainConfig,
    make_scheduler,
    spec_from_config,
    train,
)
from inference.ml.transforms import (
    AugmentConfig,
    augment_batch,
    fit_images,
    foreground_mask,
    normalize_intensity,
    plan_geometry,
    restore_geometry,
    stack_channels,
)

LABELS = (1, 2, 3, 4, 5)
NAMES = ("atherothrombotic", "cardioembolic", "cryptogenic", "lacunar", "other")


def tiny_spec(**kwargs: Any) -> ModelSpec:
    """A small, fast network spec for CPU tests."""
    base: dict[str, Any] = {
        "label_values": LABELS,
        "label_names": NAMES,
        "encoder_depth": 3,
        "decoder_channels": (32, 16, 8),
    }
    base.update(kwargs)
    return ModelSpec(**base)


def tiny_spec_for(config: TrainConfig, decoder: tuple[int, ...] = (16, 8, 8)) -> ModelSpec:
    """The three-stage spec matching a training ``config`` (fast CPU training tests)."""
    return spec_from_config(
        config,
        label_values=LABELS,
        label_names=NAMES,
        encoder_depth=3,
        decoder_channels=decoder,
    )


def synthetic_case(case_id: str, label: int, seed: int, shape: tuple[int, int, int]) -> CaseArrays:
    """Brain-like ellipse with a DWI-bright / ADC-dark blob labelled ``label``."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    z, y, x = np.mgrid[0:nz, 0:ny, 0:nx]
    brain = ((y - ny / 2) / (ny * 0.4)) ** 2 + ((x - nx / 2) / (nx * 0.35)) ** 2 < 1
    cz, cy, cx = nz // 2, ny // 2 + rng.integers(-8, 8), nx // 2 + rng.integers(-8, 8)
    blob = (((z - cz) / 1.5) ** 2 + ((y - cy) / 5.0) ** 2 + ((x - cx) / 5.0) ** 2 < 1) & brain
    noise = rng.normal(0, 5, shape)
    dwi = np.where(brain, 100.0, 2.0) + noise + 120.0 * blob
    adc = np.where(brain, 800.0, 0.0) + 10 * noise - 350.0 * blob
    flair = np.where(brain, 60.0, 1.0) + noise + 20.0 * blob
    mask = (blob * label).astype(np.uint8)
    volumes = {k: v.astype(np.float32) for k, v in (("DWI", dwi), ("ADC", adc), ("FLAIR", flair))}
    return CaseArrays(case_id, volumes, mask, (5.0, 1.0, 1.0), label)


def make_cases(shape: tuple[int, int, int] = (6, 64, 64)) -> list[CaseArrays]:
    """Four cases: phantoms when the generator is importable and works, else synthetic."""
    etiologies = ("cardioembolic", "atherothrombotic", "lacunar", "cryptogenic")
    out: list[CaseArrays] = []
    try:
        from cases.phantoms.generator import generate_case

        for i, etiology in enumerate(etiologies):
            ph = generate_case(etiology=etiology, seed=i, shape=shape)
            out.append(CaseArrays(f"ph{i}", ph.images, ph.mask, ph.spacing, ph.label_value))
    except Exception:  # noqa: BLE001 - the phantom module is optional for these tests
        out = []
    if out and all(c.mask is not None and c.mask.any() for c in out):
        return out
    return [synthetic_case(f"syn{i}", LABELS[i], i, shape) for i in range(4)]


# --------------------------------------------------------------------------- networks


def test_unet_output_shape() -> None:
    model = build_unet(
        in_channels=4, classes=3, encoder_depth=3, decoder_channels=(32, 16, 8)
    ).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 4, 64, 96))
    assert out.shape == (2, 3, 64, 96)


def test_default_model_is_about_the_research_size() -> None:
    spec = ModelSpec(label_values=LABELS, label_names=NAMES, presence_flags=False)
    model = build_from_spec(spec)
    n = count_parameters(model)
    # The group's model had ~6.5 M parameters; mobilenet_v2 U-Net: 6.63 M (3 in, 6 classes).
    assert 6_000_000 < n < 7_000_000
    assert count_parameters(model, trainable_only=True) == n
    assert spec.in_channels == 3 and spec.classes == 6


def test_spec_json_roundtrip_and_validation() -> None:
    spec = tiny_spec(context_slices=1, image_size=(64, 64))
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["in_channels"] == 3 * 3 + 3
    assert ModelSpec.from_dict(data) == spec
    data["in_channels"] = 5
    with pytest.raises(ValueError, match="in_channels"):
        ModelSpec.from_dict(data)
    with pytest.raises(ValueError):
        tiny_spec(label_values=(1, 2), label_names=("a",))
    with pytest.raises(ValueError, match="multiple"):
        tiny_spec(image_size=(60, 64))


# --------------------------------------------------------------------------- losses


def test_class_weights_inverse_sqrt_clipped() -> None:
    weights = class_weights_from_counts(torch.tensor([10000, 100, 2500, 0]), max_weight=8.0)
    assert torch.allclose(weights, torch.tensor([1.0, 8.0, 2.0, 8.0]))
    counts = label_counts(torch.tensor([[0, 0, 1], [2, 0, 1]]), 4)
    assert counts.tolist() == [3, 2, 1, 0]


def test_small_lesion_class_boost_is_bounded() -> None:
    counts = torch.tensor([100000, 400, 100, 25, 0])
    plain = class_weights_from_counts(counts)
    assert torch.equal(class_weights_from_counts(counts, small_lesion_boost=1.0), plain)
    boosted = class_weights_from_counts(counts, small_lesion_boost=2.0)
    # sqrt(400 / n) capped at 2: the largest lesion class keeps its weight, the 4x and 16x
    # smaller ones get the full (bounded) factor 2; an absent class is left alone.
    assert torch.allclose(boosted / plain, torch.tensor([1.0, 1.0, 2.0, 2.0, 1.0]))
    mild = class_weights_from_counts(torch.tensor([100000, 400, 200]), small_lesion_boost=2.0)
    assert math.isclose(float(mild[2] / mild[1]), math.sqrt(2), rel_tol=1e-5)


def test_soft_dice_perfect_and_wrong() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1
    perfect = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float() * 50
    assert SoftDiceLoss()(perfect, target).item() < 1e-3
    wrong = perfect.flip(1)
    assert SoftDiceLoss()(wrong, target).item() > 0.9


def test_soft_dice_ignores_classes_absent_from_the_batch() -> None:
    # Class 2 is absent from the target; a small probability for it everywhere must not
    # cost a whole class's share of the loss (cross-entropy handles its false positives).
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 5
    assert SoftDiceLoss()(logits, target).item() < 0.05
    empty = torch.zeros(2, 8, 8, dtype=torch.long)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    loss = SoftDiceLoss()(x, empty)
    loss.backward()
    assert loss.item() == 0.0 and x.grad is not None


def test_lesion_dice_counts_a_lesion_whatever_its_label() -> None:
    target = torch.zeros(1, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:5] = 1
    right = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    # Every lesion voxel found, all with the wrong etiology (class 2 instead of 1).
    wrong_label = right[:, [0, 2, 1]]
    assert lesion_dice_loss(right, target).item() < 1e-3
    assert lesion_dice_loss(wrong_label, target).item() < 1e-3
    assert SoftDiceLoss()(wrong_label, target).item() > 0.85
    missed = torch.zeros_like(right)
    missed[:, 0] = 50.0
    assert lesion_dice_loss(missed, target).item() > 0.85
    # Its gradient reaches only the background logit: it must not favour an etiology.
    logits = torch.randn(1, 3, 8, 8, requires_grad=True)
    lesion_dice_loss(logits, target).backward()
    assert logits.grad is not None and bool(logits.grad[:, 0].abs().sum() > 0)
    assert bool(logits.grad[:, 1:].eq(0).all())
    with_term = SegmentationLoss(lesion_dice_weight=1.0)(missed, target)
    without = SegmentationLoss()(missed, target)
    assert with_term.item() == pytest.approx(
        without.item() + lesion_dice_loss(missed, target).item()
    )


def test_loss_decreases_when_overfitting_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = build_unet(in_channels=2, classes=3, encoder_depth=3, decoder_channels=(16, 8, 8))
    x = torch.randn(4, 2, 32, 32)
    y = torch.zeros(4, 32, 32, dtype=torch.long)
    y[:, 8:16, 8:16] = 1
    y[:2, 20:26, 20:28] = 2
    x[:, 0] += y.float()  # a learnable signal
    loss_fn = SegmentationLoss(class_weights=class_weights_from_counts(label_counts(y, 3)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


# --------------------------------------------------------------------------- transforms


def test_normalisation_is_robust_zscore_of_the_foreground() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((4, 32, 32), dtype=np.float32)
    image[:, 8:24, 8:24] = rng.normal(100, 10, (4, 16, 16))
    image[0, 10, 10] = 1e6  # one hot voxel must not set the scale
    fg = foreground_mask(image)
    assert fg[:, 8:24, 8:24].mean() > 0.99 and not fg[:, :4].any()
    out = normalize_intensity(image)
    inside = out[:, 8:24, 8:24]
    assert abs(float(inside.mean())) < 0.05
    assert 0.9 < float(inside.std()) < 1.1
    assert float(out.max()) < 5  # the outlier was clipped to the upper percentile
    # Air is clamped to the darkest foreground value: below all tissue, not -inf-like.
    assert np.all(out[:, :4] == out.min()) and float(out.min()) < -2
    assert np.all(normalize_intensity(np.full((2, 4, 4), 7.0)) == 0)
    nan_image = image.copy()
    nan_image[1, 1, 1] = np.nan
    assert np.isfinite(normalize_intensity(nan_image)).all()


def test_stack_channels_missing_series_context_and_flags() -> None:
    dwi = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    flair = np.ones((3, 4, 4), dtype=np.float32)
    out = stack_channels({"DWI": dwi, "FLAIR": flair}, context_slices=1, normalisation=None)
    assert out.shape == (3, 3 * 3 + 3, 4, 4)
    # DWI context channels: z-1, z, z+1 with edge replication.
    assert np.array_equal(out[0, 0], dwi[0]) and np.array_equal(out[0, 2], dwi[1])
    assert np.array_equal(out[2, 2], dwi[2]) and np.array_equal(out[1, 0], dwi[0])
    assert np.all(out[:, 3:6] == 0)  # ADC missing -> zeros
    assert np.all(out[:, 9] == 1) and np.all(out[:, 10] == 0) and np.all(out[:, 11] == 1)
    no_flags = stack_channels({"DWI": dwi}, presence_flags=False)
    assert no_flags.shape == (3, 3, 4, 4)
    with pytest.raises(ValueError, match="none of the series"):
        stack_channels({"CT": dwi})
    with pytest.raises(ValueError, match="same grid"):
        stack_channels({"DWI": dwi, "ADC": np.zeros((3, 4, 5), np.float32)})


def test_projection_channels_carry_the_whole_volume_on_every_slice() -> None:
    dwi = np.zeros((4, 5, 5), dtype=np.float32)
    dwi[0, 1, 1] = 3.0  # a lesion on the first slice...
    dwi[3, 4, 2] = 2.0  # ...and another on the last
    adc = np.ones((4, 5, 5), dtype=np.float32)
    out = stack_channels(
        {"DWI": dwi, "ADC": adc},
        ("DWI", "ADC"),
        projection_kinds=("DWI",),
        normalisation=None,
    )
    # Channels: DWI slice, ADC slice, DWI projection, two presence flags.
    assert out.shape == (4, 5, 5, 5)
    for z in range(4):
        assert out[z, 2, 1, 1] == 3.0 and out[z, 2, 4, 2] == 2.0
        assert np.array_equal(out[z, 0], dwi[z])
    assert np.all(out[:, 3:] == 1)
    spec = tiny_spec(context_slices=1, projection_kinds=("DWI",))
    assert spec.in_channels == 3 * 3 + 1 + 3 and spec.intensity_channels == 10
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    # Models stored before projections existed load with none.
    legacy = spec.to_dict()
    del legacy["projection_kinds"], legacy["in_channels"]
    assert ModelSpec.from_dict(legacy).projection_kinds == ()
    with pytest.raises(ValueError, match="projection_kinds"):
        tiny_spec(channel_kinds=("ADC",), projection_kinds=("DWI",))
    with pytest.raises(ValueError, match="projection kinds"):
        stack_channels({"DWI": dwi}, ("DWI",), projection_kinds=("FLAIR",))


def test_geometry_pad_and_resize_roundtrip() -> None:
    x = torch.randn(2, 3, 50, 70)
    geo = plan_geometry((50, 70), multiple=32)
    assert geo.fitted == (64, 96)
    fitted = fit_images(x, geo)
    assert fitted.shape[-2:] == (64, 96)
    assert torch.equal(restore_geometry(fitted, geo), x)
    geo_r = plan_geometry((50, 70), multiple=32, image_size=(64, 64))
    assert restore_geometry(fit_images(x, geo_r), geo_r).shape == x.shape


def _label_image(n: int = 4, size: int = 64) -> torch.Tensor:
    y = torch.zeros(n, size, size, dtype=torch.long)
    y[:, 10:30, 12:40] = 1
    y[:, 35:55, 20:34] = 2
    y[:, 40:48, 45:60] = 3
    return y


def test_augmentation_keeps_image_and_mask_aligned() -> None:
    cfg = AugmentConfig(
        flip_lr=0.5,
        flip_ud=0.5,
        affine=1.0,
        perspective=1.0,
        grid_distortion=1.0,
        elastic=1.0,
        gamma=0.0,
        contrast=0.0,
        brightness=0.0,
        noise=0.0,
    )
    y = _label_image()
    x = y[:, None].float()  # the image IS the mask
    gen = torch.Generator().manual_seed(3)
    xa, ya = augment_batch(x, y, cfg, generator=gen)
    assert not torch.equal(ya, y)  # something moved
    img = xa[:, 0]
    interior = (img - img.round()).abs() < 1e-4  # not on a bilinear-blended edge
    assert interior.float().mean() > 0.9
    assert torch.equal(img.round().long()[interior], ya[interior])
    # Every label survives and almost all pixels agree, edges included.
    assert set(ya.unique().tolist()) == {0, 1, 2, 3}
    assert (img.round().long() == ya).float().mean() > 0.97
    # Same seed, same result; another seed, another result.
    xb, yb = augment_batch(x, y, cfg, generator=torch.Generator().manual_seed(3))
    assert torch.equal(xb, xa) and torch.equal(yb, ya)
    _, yc = augment_batch(x, y, cfg, generator=torch.Generator().manual_seed(4))
    assert not torch.equal(yc, ya)


def test_flip_is_exact_and_intensity_spares_flag_channels() -> None:
    y = _label_image(2, 32)
    x = torch.randn(2, 4, 32, 32)
    x[:, 3] = 1.0  # presence flag channel
    off = dict.fromkeys(("affine", "perspective", "grid_distortion", "elastic"), 0.0)
    flip = AugmentConfig(flip_lr=1.0, gamma=0, contrast=0, brightness=0, noise=0, **off)
    xf, yf = augment_batch(x, y, flip, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(xf, x.flip(-1), atol=1e-5) and torch.equal(yf, y.flip(-1))
    intensity = AugmentConfig(flip_lr=0, gamma=1, contrast=1, brightness=1, noise=1, **off)
    xi, yi = augment_batch(x, y, intensity, generator=torch.Generator(), image_channels=3)
    assert torch.equal(yi, y) and not torch.allclose(xi[:, :3], x[:, :3])
    assert torch.allclose(xi[:, 3], x[:, 3])


# --------------------------------------------------------------------------- data


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


def test_dice_iou_hand_computed() -> None:
    ref = np.zeros((1, 4, 4), np.uint8)
    pred = np.zeros((1, 4, 4), np.uint8)
    ref[0, 0, :3] = 1  # 3 voxels
    pred[0, 0, 1:4] = 1  # 3 voxels, 2 overlap
    assert M.dice_per_label(pred, ref, [1])[1] == pytest.approx(2 * 2 / 6)
    assert M.iou_per_label(pred, ref, [1])[1] == pytest.approx(2 / 4)
    empty = np.zeros((1, 4, 4), np.uint8)
    assert M.dice_per_label(empty, empty, [1, 2]) == {1: 1.0, 2: 1.0}  # empty vs empty
    assert M.dice_per_label(empty, ref, [1])[1] == 0.0
    assert M.dice_per_label(ref, ref, [1])[1] == 1.0
    one = np.zeros((1, 4, 4), np.uint8)
    one[0, 3, 3] = 2
    assert M.dice_per_label(one, one, [2])[2] == 1.0
    assert M.dice_per_label(one, ref, [1, 2]) == {1: 0.0, 2: 0.0}  # disjoint
    assert M.binary_dice(one, ref) == 0.0
    assert M.volume_ml(ref, (5.0, 2.0, 1.0)) == pytest.approx(3 * 10 / 1000)


def test_lesion_detection_hand_computed() -> None:
    ref = np.zeros((3, 10, 10), np.uint8)
    ref[1, 1:3, 1:3] = 1  # lesion A
    ref[1, 7:9, 7:9] = 2  # lesion B (missed)
    pred = np.zeros_like(ref)
    pred[1, 2:4, 2:4] = 1  # overlaps A by one voxel -> TP
    pred[0, 6, 1] = 3  # false positive
    det = M.lesion_detection(pred, ref)
    assert (det.n_pred, det.n_ref, det.tp_pred, det.detected_ref) == (2, 2, 1, 1)
    assert det.false_positives == 1 and det.missed == 1
    assert det.precision == 0.5 and det.recall == 0.5 and det.f1 == 0.5
    empty = np.zeros_like(ref)
    assert M.lesion_detection(empty, empty).f1 == 1.0  # no lesion in either
    assert M.lesion_detection(pred, empty).f1 == 0.0
    assert M.lesion_detection(ref, ref).f1 == 1.0
    # Diagonal neighbours are one lesion with 26- but two with 6-connectivity.
    diag = np.zeros((2, 2, 2), np.uint8)
    diag[0, 0, 0] = diag[1, 1, 1] = 1
    assert M.connected_components(diag)[1] == 1
    assert M.connected_components(diag, connectivity=6)[1] == 2


def test_classification_kappa_and_calibration_hand_computed() -> None:
    report = M.classification_report([1, 1, 2, 2], [1, 2, 2, None], [1, 2, 3])
    assert report.accuracy == 0.5
    assert report.per_label_f1 == {1: pytest.approx(2 / 3), 2: pytest.approx(0.5)}
    assert report.macro_f1 == pytest.approx((2 / 3 + 0.5) / 2)  # label 3 unseen: left out
    assert report.confusion.tolist() == [[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]]
    assert report.n_unpredicted == 1
    # Cohen: p_o = 0.7, p_e = 0.5*0.6 + 0.5*0.4 = 0.5 -> kappa 0.4.
    a = ["x"] * 5 + ["y"] * 5
    b = ["x"] * 4 + ["y"] + ["x"] * 2 + ["y"] * 3
    assert M.cohen_kappa(a, b) == pytest.approx(0.4)
    assert M.cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    # Fleiss, Wikipedia's worked example (10 subjects, 14 raters, 5 categories): 0.210.
    table = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ]
    )
    assert M.fleiss_kappa_from_counts(table) == pytest.approx(0.210, abs=1e-3)
    assert M.fleiss_kappa([[1, 1, 1], [2, 2, 2]]) == 1.0
    # Calibration: bin (0.8, 0.9] holds 0.85, 0.85 (1 right) -> gap 0.35; (0.9, 1] holds
    # 1.0 (right) -> gap 0. ECE = 2/3 * 0.35.
    cal = M.calibration([0.85, 0.85, 1.0], [True, False, True], n_bins=10)
    assert cal.bins[8].count == 2 and cal.bins[9].count == 1
    assert cal.ece == pytest.approx(2 / 3 * 0.35) and cal.mce == pytest.approx(0.35)
    masks = {"b": np.eye(3, dtype=np.uint8)[None], "a": np.eye(3, dtype=np.uint8)[None]}
    masks["c"] = np.zeros((1, 3, 3), np.uint8)
    pairs = M.pairwise_dice(masks)
    assert pairs == {("a", "b"): 1.0, ("a", "c"): 0.0, ("b", "c"): 0.0}


# --------------------------------------------------------------------------- predictor


def _postprocess_spec() -> ModelSpec:
    return tiny_spec(label_values=(1, 2, 4), label_names=("ath", "card", "lac"))


def test_postprocess_vote_volumes_and_small_component_removal() -> None:
    spec = _postprocess_spec()
    # Raw per-voxel labels ("none"): this test checks the vote and per-label volumes of the
    # argmax itself; relabelling is tested below.
    predictor = Predictor(
        nn.Identity(), spec, "cpu", min_lesion_voxels=2, min_lesion_ml=0.01, relabel="none"
    )
    probs = torch.zeros(4, 4, 10, 10)
    probs[:, 0] = 1.0
    region_a = (slice(1, 3), slice(1, 3), slice(1, 3))  # 8 voxels, class 1
    region_b = (slice(1, 2), slice(6, 8), slice(6, 8))  # 4 voxels, class 2
    for region, p in ((region_a, (0.1, 0.7, 0.2, 0.0)), (region_b, (0.1, 0.3, 0.6, 0.0))):
        for k, v in enumerate(p):
            probs[region[0], k, region[1], region[2]] = v
    probs[3, :, 9, 0] = torch.tensor([0.2, 0.0, 0.0, 0.8])  # isolated 1-voxel speck
    out = predictor.postprocess(probs, (5.0, 1.0, 1.0))  # voxel = 0.005 ml
    assert out.removed_components == 1 and out.n_lesions == 2
    assert out.label_volume.dtype == np.uint8 and out.label_volume[3, 9, 0] == 0
    assert set(np.unique(out.label_volume).tolist()) == {0, 1, 2}
    assert out.lesion_volume_ml == {1: pytest.approx(0.04), 2: pytest.approx(0.02), 4: 0.0}
    # Vote: label 1 = 8*0.7 + 4*0.3 = 6.8, label 2 = 8*0.2 + 4*0.6 = 4.0, label 4 = 0.
    assert out.etiology == 1 and out.etiology_name == "ath"
    assert out.confidence == pytest.approx(6.8 / 10.8)
    assert out.probabilities == {
        1: pytest.approx(6.8 / 10.8),
        2: pytest.approx(4.0 / 10.8),
        4: 0.0,
    }
    assert out.mean_probabilities[1] == pytest.approx(6.8 / 12)
    assert sorted(les.voxels for les in out.lesions) == [4, 8]
    small = next(les for les in out.lesions if les.voxels == 4)
    assert small.label == 2 and small.centroid == (1.0, 6.5, 6.5)
    assert small.bbox == (1, 2, 6, 8, 6, 8)
    assert json.dumps(out.summary())


def _mixed_lesion_probs() -> torch.Tensor:
    """Two lesions on one slice: A (8 voxels) mostly label 1 with 2 voxels of label 2, B (4
    voxels) label 4. Vote: 1 -> 6*0.7 + 2*0.3 = 4.8, 2 -> 6*0.2 + 2*0.6 + 4*0.3 = 3.6,
    4 -> 4*0.6 = 2.4 (total 10.8)."""
    probs = torch.zeros(3, 4, 10, 10)
    probs[:, 0] = 1.0
    cells = (
        ((1, slice(1, 3), slice(1, 4)), (0.1, 0.7, 0.2, 0.0)),  # A, label 1 (6 voxels)
        ((1, slice(1, 3), slice(4, 5)), (0.1, 0.3, 0.6, 0.0)),  # A, label 2 (2 voxels)
        ((1, slice(6, 8), slice(6, 8)), (0.1, 0.0, 0.3, 0.6)),  # B, label 4 (4 voxels)
    )
    for (z, ys, xs), p in cells:
        for k, v in enumerate(p):
            probs[z, k, ys, xs] = v
    return probs


@pytest.mark.parametrize(
    ("relabel", "volumes", "lesion_labels"),
    [
        ("none", {1: 6, 2: 2, 4: 4}, [1, 4]),
        ("lesion", {1: 8, 2: 0, 4: 4}, [1, 4]),
        ("case", {1: 12, 2: 0, 4: 0}, [1, 1]),
    ],
)
def test_postprocess_relabel_modes_keep_vote_and_extent(
    relabel: str, volumes: dict[int, int], lesion_labels: list[int]
) -> None:
    predictor = Predictor(nn.Identity(), _postprocess_spec(), "cpu", relabel=relabel)  # type: ignore[arg-type]
    out = predictor.postprocess(_mixed_lesion_probs(), (5.0, 1.0, 1.0))  # voxel = 0.005 ml
    # The vote and the lesion extent never depend on the relabel mode.
    assert out.etiology == 1 and out.confidence == pytest.approx(4.8 / 10.8)
    assert out.probabilities == {
        1: pytest.approx(4.8 / 10.8),
        2: pytest.approx(3.6 / 10.8),
        4: pytest.approx(2.4 / 10.8),
    }
    assert int((out.label_volume > 0).sum()) == 12 and out.n_lesions == 2
    counts = {v: int((out.label_volume == v).sum()) for v in (1, 2, 4)}
    assert counts == volumes
    assert out.lesion_volume_ml == {v: pytest.approx(n * 0.005) for v, n in volumes.items()}
    assert [les.label for les in sorted(out.lesions, key=lambda les: les.bbox[4])] == (
        lesion_labels
    )


def test_predictor_relabels_to_the_case_etiology_by_default() -> None:
    predictor = Predictor(nn.Identity(), _postprocess_spec(), "cpu")
    assert predictor.relabel == "case"
    out = predictor.postprocess(_mixed_lesion_probs(), (5.0, 1.0, 1.0))
    assert set(np.unique(out.label_volume).tolist()) == {0, 1}
    with pytest.raises(ValueError, match="relabel"):
        Predictor(nn.Identity(), _postprocess_spec(), "cpu", relabel="slice")  # type: ignore[arg-type]


def test_lesion_first_rule_keeps_voxels_whose_etiology_is_split() -> None:
    probs = torch.zeros(1, 4, 6, 6)
    probs[:, 0] = 1.0
    # 60 % lesion split between two etiologies: background wins a plain argmax.
    probs[0, :, 1:4, 1:4] = torch.tensor([0.4, 0.35, 0.25, 0.0])[:, None, None]
    # Clear background (55 %) stays background under both rules.
    probs[0, :, 5, 5] = torch.tensor([0.55, 0.45, 0.0, 0.0])
    spacing = (5.0, 1.0, 1.0)
    first = Predictor(nn.Identity(), _postprocess_spec(), "cpu", relabel="none")
    assert first.foreground == "lesion_first"
    out = first.postprocess(probs, spacing)
    assert int((out.label_volume == 1).sum()) == 9 and int((out.label_volume > 0).sum()) == 9
    assert out.etiology == 1 and out.n_lesions == 1
    plain = Predictor(nn.Identity(), _postprocess_spec(), "cpu", foreground="argmax")
    assert plain.postprocess(probs, spacing).n_lesions == 0
    with pytest.raises(ValueError, match="foreground"):
        Predictor(nn.Identity(), _postprocess_spec(), "cpu", foreground="max")  # type: ignore[arg-type]


def test_postprocess_without_lesion_gives_no_etiology() -> None:
    predictor = Predictor(nn.Identity(), _postprocess_spec(), "cpu")
    probs = torch.zeros(2, 4, 8, 8)
    probs[:, 0] = 1.0
    out = predictor.postprocess(probs, (1.0, 1.0, 1.0))
    assert out.etiology is None and out.confidence == 0.0 and out.n_lesions == 0
    assert out.probabilities == {1: 0.0, 2: 0.0, 4: 0.0}
    assert out.notes and "No lesion" in out.notes[0]


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_write_is_atomic_and_bad_files_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tiny_spec()
    model = build_from_spec(spec)
    path = save_checkpoint(tmp_path / "model.pt", model=model, spec=spec, epoch=3)
    loaded, ckpt = load_model(path)
    assert not loaded.training
    assert ckpt.epoch == 3 and ckpt.spec == spec
    before = path.read_bytes()

    def crash(obj: object, handle: Any) -> None:
        handle.write(b"half a checkpoint")
        raise KeyboardInterrupt  # e.g. the worker is killed mid-write

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model=model, spec=spec, epoch=4)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.pt"]

    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(before[: len(before) // 2])
    with pytest.raises(ModelLoadError, match="not a readable checkpoint"):
        Predictor.load(corrupt)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a zip")
    with pytest.raises(ModelLoadError):
        Predictor.load(garbage)
    with pytest.raises(ModelLoadError, match="does not exist"):
        Predictor.load(tmp_path / "missing.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(ModelLoadError, match="not a strokeaid-unet"):
        Predictor.load(plain)
    # Weights of a 3-label model under a 5-label spec.
    other = build_from_spec(tiny_spec(label_values=(1, 2, 3), label_names=("a", "b", "c")))
    mismatched = save_checkpoint(tmp_path / "mismatch.pt", model=other, spec=spec)
    with pytest.raises(ModelLoadError, match="do not match"):
        Predictor.load(mismatched)


# --------------------------------------------------------------------------- training


def test_real_short_training_gives_a_loadable_checkpoint_and_prediction(tmp_path: Path) -> None:
    cases = make_cases()
    config = TrainConfig(epochs=1, batch_size=4, device="cpu", lesion_fraction=0.7)
    spec = tiny_spec_for(config, (32, 16, 8))
    reports: list[EpochReport] = []
    progress: list[float] = []
    ckpt = tmp_path / "run" / "best.pt"
    result = train(
        train_cases=cases[:3],
        val_cases=cases[3:],
        spec=spec,
        config=config,
        on_epoch=reports.append,
        on_progress=progress.append,
        checkpoint_path=ckpt,
    )
    assert result.checkpoint_path == ckpt and ckpt.is_file()
    assert len(reports) == 1 and reports[0].is_best and math.isfinite(reports[0].train_loss)
    assert {"dice_mean", "lesion_f1", "case_accuracy", "case_macro_f1"} <= set(reports[0].metrics)
    assert progress[-1] == 1.0
    assert json.dumps(reports[0].to_dict()) and json.dumps(config.to_dict())
    assert TrainConfig.from_dict(config.to_dict()) == config

    eager = Predictor.load(ckpt, backend="eager", device="cpu")
    case = cases[3]
    out = eager.predict(case.volumes, case.spacing)
    assert case.mask is not None and out.label_volume.shape == case.mask.shape
    assert set(out.timings) == {"preprocess", "infer", "postprocess", "total"}
    # ONNX Runtime path: exported next to the weights, same probabilities as eager.
    fast = Predictor.load(ckpt, backend="onnx")
    assert fast.backend == "onnx" and list(tmp_path.joinpath("run").glob("best.pt.*.onnx"))
    tensor = eager.preprocess(case.volumes)
    assert torch.allclose(fast.infer(tensor), eager.infer(tensor), atol=1e-4)
    # A study without ADC/FLAIR still predicts, with a note.
    dwi_only = eager.predict({"DWI": case.volumes["DWI"]}, case.spacing)
    assert dwi_only.notes[0].startswith("Series missing: ADC, FLAIR")


def test_learning_rate_schedules_run_for_every_short_run() -> None:
    # OneCycleLR with a 10 % warm-up divides by zero on a run of exactly 10 steps.
    for schedule in ("onecycle", "cosine"):
        config = TrainConfig(schedule=schedule, lr=1e-3)  # type: ignore[arg-type]
        for total in range(1, 41):
            weight = nn.Parameter(torch.zeros(1))
            optimizer = torch.optim.AdamW([weight], lr=config.lr)
            scheduler = make_scheduler(optimizer, config, total)
            rates = []
            for _ in range(total):
                rates.append(optimizer.param_groups[0]["lr"])  # the rate this step uses
                optimizer.step()
                scheduler.step()
            assert all(0.0 <= r <= config.lr * (1 + 1e-9) for r in rates), (schedule, total)
            if total >= 3:  # the rate comes down by the end of the run
                assert rates[-1] < config.lr / 2, (schedule, total)


def test_half_storage_trains_like_float32_and_bad_choices_are_refused() -> None:
    cases = [synthetic_case(f"s{i}", LABELS[i % 2], i, (4, 32, 32)) for i in range(4)]
    losses = {}
    for dtype in ("float32", "float16"):
        config = TrainConfig(
            epochs=2, batch_size=2, device="cpu", augment=AugmentConfig(False), storage_dtype=dtype
        )  # type: ignore[arg-type]
        spec = tiny_spec_for(config)
        result = train(train_cases=cases, val_cases=[], spec=spec, config=config)
        losses[dtype] = [r.train_loss for r in result.history]
    # Same seed, same batches: only the float16 rounding of the stored slices differs.
    assert losses["float16"] == pytest.approx(losses["float32"], rel=0.02)
    assert losses["float16"] != losses["float32"]  # the option really changes the storage
    for field, value in (("storage_dtype", "int8"), ("schedule", "step"), ("monitor", "loss")):
        with pytest.raises(ValueError, match=field):
            TrainConfig(**{field: value})


def test_early_stopping_waits_for_patience_and_min_epochs() -> None:
    # lr = 0: the weights never change, so every validation after the first is stale.
    cases = [synthetic_case(f"s{i}", LABELS[i % 2], i, (4, 32, 32)) for i in range(3)]
    stopped_at = {}
    for min_epochs in (0, None, 10):
        config = TrainConfig(
            epochs=10,
            batch_size=2,
            lr=0.0,
            device="cpu",
            augment=AugmentConfig(False),
            early_stopping_patience=2,
            min_epochs=min_epochs,
        )
        spec = tiny_spec_for(config)
        result = train(train_cases=cases[:2], val_cases=cases[2:], spec=spec, config=config)
        assert result.best_epoch == 1
        stopped_at[min_epochs] = (len(result.history), result.stopped_early)
    # Two stale validations after epoch 1; by default not before half of the epochs.
    assert stopped_at == {0: (3, True), None: (5, True), 10: (10, False)}


def test_training_can_be_cancelled(tmp_path: Path) -> None:
    cases = [synthetic_case(f"s{i}", LABELS[i % 2], i, (4, 32, 32)) for i in range(2)]
    config = TrainConfig(epochs=5, batch_size=2, device="cpu", augment=AugmentConfig(False))
    spec = tiny_spec_for(config)
    result = train(
        train_cases=cases, val_cases=[], spec=spec, config=config, should_stop=lambda: True
    )
    assert result.cancelled and len(result.history) == 1
    with pytest.raises(ValueError, match="disagree"):
        train(
            train_cases=cases,
            val_cases=[],
            spec=spec,
            config=TrainConfig(epochs=1, context_slices=config.context_slices + 1),
        )


@pytest.mark.gpu
def test_training_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device; none is available")
    cases = make_cases()
    config = TrainConfig(epochs=2, batch_size=4, device="cuda", amp=True)
    spec = spec_from_config(config, label_values=LABELS, label_names=NAMES)
    result = train(
        train_cases=cases[:3],
        val_cases=cases[3:],
        spec=spec,
        config=config,
        checkpoint_path=tmp_path / "gpu.pt",
    )
    assert result.device.startswith("cuda") and all(
        math.isfinite(r.train_loss) for r in result.history
    )
    predictor = Predictor.load(tmp_path / "gpu.pt", device="cuda")
    assert predictor.backend == "eager"
    out = predictor.predict(cases[3].volumes, cases[3].spacing)
    assert out.label_volume.shape == cases[3].volumes["DWI"].shape
