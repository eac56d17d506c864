"""Segmentation, detection and classification metrics (inference.ml.metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from inference.ml import metrics as M


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
