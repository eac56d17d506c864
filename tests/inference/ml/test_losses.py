"""Class weights and the Dice/lesion losses (inference.ml.losses)."""

from __future__ import annotations

import math

import pytest
import torch

from inference.ml.losses import (
    UNKNOWN_LESION,
    SegmentationLoss,
    SoftDiceLoss,
    class_weights_from_counts,
    label_counts,
    lesion_dice_loss,
)
from inference.ml.networks import (
    build_unet,
)


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


def test_lesions_of_unknown_etiology_teach_where_not_which() -> None:
    """A mask without a confirmed etiology: the loss rewards "lesion", never one etiology."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 8, 8)
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[:, 2:5, 2:5] = UNKNOWN_LESION
    target[1, 6:8, 6:8] = 2
    loss_fn = SegmentationLoss(
        class_weights=torch.tensor([1.0, 3.0, 3.0, 3.0]), lesion_dice_weight=1.0
    )
    # Permuting the etiology logits inside the unknown region changes nothing.
    swapped = logits.clone()
    region = (slice(None), slice(None), slice(2, 5), slice(2, 5))
    swapped[region] = logits[region][:, [0, 3, 1, 2]]
    assert loss_fn(swapped, target) == pytest.approx(float(loss_fn(logits, target)), rel=1e-5)
    # Raising any lesion class there lowers the loss; raising background raises it.
    lesion_up, background_up = logits.clone(), logits.clone()
    lesion_up[:, 1][:, 2:5, 2:5] += 3.0
    background_up[:, 0][:, 2:5, 2:5] += 3.0
    base = float(loss_fn(logits, target))
    assert float(loss_fn(lesion_up, target)) < base < float(loss_fn(background_up, target))
    assert label_counts(target, 4).tolist() == [2 * 64 - 18 - 4, 0, 4, 0]
