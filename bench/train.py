"""Training epoch time of the platform trainer vs a bare PyTorch loop over in-memory tensors.

Same model (spec), same slices, same batch size, optimiser and loss; augmentation off in
both (the bare loop has none). Platform = ``inference.ml.trainer.train`` (the code the
training task runs), its ``EpochReport.train_seconds``; baseline = the minimal loop
``for batch: loss(model(x), y).backward(); opt.step()`` on contiguous tensors. Target ratio
<= 1.10. Median of --repeats epochs each; JSON on stdout.

    python bench/train.py [--cases 12] [--size 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases.phantoms import DEFAULT_LABEL_VALUES, ETIOLOGIES, generate_case
from inference.ml.data import CaseArrays, build_slice_dataset
from inference.ml.losses import SegmentationLoss
from inference.ml.networks import build_from_spec
from inference.ml.trainer import TrainConfig, spec_from_config, train
from inference.ml.transforms import AugmentConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement (median)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--encoder", default="mobilenet_v2")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    cases = []
    for i in range(args.cases):
        ph = generate_case(etiology=ETIOLOGIES[i % len(ETIOLOGIES)], seed=500 + i)
        cases.append(CaseArrays(str(i), ph.images, ph.mask, ph.spacing, ph.label_value))
    labels = sorted(DEFAULT_LABEL_VALUES.values())
    names = sorted(DEFAULT_LABEL_VALUES, key=DEFAULT_LABEL_VALUES.__getitem__)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        encoder=args.encoder,
        image_size=(args.size, args.size),
        augment=AugmentConfig(enabled=False),
        early_stopping_patience=0,
        device=args.device,
        validate_every=10**6,
    )
    spec = spec_from_config(config, label_values=labels, label_names=names)

    # Platform: the trainer (no validation set, so epochs are pure training passes).
    result = train(train_cases=cases, val_cases=[], spec=spec, config=config)
    platform = [r.train_seconds for r in result.history]

    # Baseline: the same slices as in-memory tensors and a bare loop.
    data = build_slice_dataset(cases, spec, seed=config.seed)
    x, y = data.x.to(device), data.y.to(device)
    torch.manual_seed(0)
    model = build_from_spec(spec).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = SegmentationLoss(lesion_dice_weight=config.lesion_dice_weight).to(device)
    baseline = []
    n = x.shape[0]
    for _ in range(args.epochs):
        order = torch.randperm(n, device=device)
        t = time.perf_counter()
        for start in range(0, n, args.batch_size):
            idx = order[start : start + args.batch_size]
            if idx.numel() < 2:
                break
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        baseline.append(time.perf_counter() - t)
    # The first epoch warms allocators/kernels in both: report the median of the rest.
    p_med = statistics.median(platform[1:] or platform)
    b_med = statistics.median(baseline[1:] or baseline)
    out = {
        "benchmark": "train",
        "device": args.device,
        "threads": torch.get_num_threads(),
        "slices": int(n),
        "input": [spec.in_channels, args.size, args.size],
        "platform_epoch_seconds": [round(v, 3) for v in platform],
        "baseline_epoch_seconds": [round(v, 3) for v in baseline],
        "platform_median": round(p_med, 3),
        "baseline_median": round(b_med, 3),
        "ratio": round(p_med / b_med, 3),
        "target": 1.10,
    }
    out["meets_target"] = out["ratio"] <= 1.10
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
