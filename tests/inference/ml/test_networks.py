"""U-Net construction and its spec (inference.ml.networks)."""

from __future__ import annotations

import json

import pytest
import torch

from inference.ml.networks import (
    ModelSpec,
    build_from_spec,
    build_unet,
    count_parameters,
)

from .helpers import LABELS, NAMES, tiny_spec


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
