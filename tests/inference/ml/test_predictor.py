"""Post-processing, the per-case vote and checkpoints (inference.ml.predictor)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from inference.ml.networks import (
    ModelLoadError,
    ModelSpec,
    build_from_spec,
    load_model,
    save_checkpoint,
)
from inference.ml.predictor import Predictor

from .helpers import tiny_spec


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


def test_brain_masking_drops_lesions_outside_the_brain_and_flags_a_whole_head() -> None:
    spec = tiny_spec(label_values=(1, 2), label_names=("ath", "card"), brain_masking=True)
    predictor = Predictor(nn.Identity(), spec, "cpu", min_lesion_voxels=1, min_lesion_ml=0.0)
    brain = np.zeros((4, 20, 20), dtype=bool)
    brain[:, 4:16, 4:16] = True
    probs = torch.zeros(4, 3, 20, 20)
    probs[:, 0] = 1.0
    probs[1, :, 6:9, 6:9] = torch.tensor([0.1, 0.8, 0.1])[:, None, None]  # inside the brain
    probs[1, :, 0:2, 0:2] = torch.tensor([0.1, 0.1, 0.8])[:, None, None]  # in the air
    out = predictor.postprocess(probs, (1.0, 1.0, 1.0), brain=brain)
    assert out.n_lesions == 1 and out.label_volume[1, 0, 0] == 0
    assert out.etiology == 1 and not out.flags
    assert out.brain_volume_ml == pytest.approx(4 * 144 / 1000)
    # A model that calls the whole head lesion gives a flag, not an answer.
    everything = torch.zeros(4, 3, 20, 20)
    everything[:, 1] = 0.9
    everything[:, 0] = 0.1
    flagged = predictor.postprocess(everything, (1.0, 1.0, 1.0), brain=brain)
    assert flagged.flags == ["implausible_lesion_volume"]
    assert flagged.etiology is None and flagged.confidence == 0.0
    assert not flagged.label_volume[~brain].any()
    assert "100 % of the brain" in flagged.notes[0]
    # Older models (no brain masking) keep their behaviour.
    plain = Predictor(nn.Identity(), tiny_spec(label_values=(1, 2), label_names=("a", "c")), "cpu")
    assert plain.postprocess(everything, (1.0, 1.0, 1.0), brain=brain).etiology == 1
