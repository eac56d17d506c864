"""End-to-end prediction of one 25 x 256 x 256 case through the platform's service, as a
ratio to a bare eager smp forward of the same model on the same tensor (same run).

Platform path (``inference.services.prediction.prediction_run``): read the three volumes
from storage, preprocess, infer (inference mode, channels-last batches / ONNX Runtime on CPU),
postprocess (components, vote), store label volume + probability maps + rows. Baseline:
``model(x)`` under ``torch.no_grad()`` on the preprocessed (z, C, 256, 256) tensor, default
memory format. Target: ratio <= 1.0 on CPU. Median of --repeats runs; JSON on stdout.

    python bench/predict.py [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from _django import django_setup


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--encoder", default="mobilenet_v2")
    args = p.parse_args()
    django_setup()

    import torch
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from accounts.services import user_create  # noqa: F401 - app import order
    from cases.models import Label, LabelSet
    from cases.phantoms import generate_case
    from cases.services.case import case_create
    from cases.services.series import series_create_from_phantom
    from inference.ml.networks import ModelSpec, build_from_spec, load_model, save_checkpoint
    from inference.models import PredictionJob
    from inference.services.prediction import prediction_run, predictor_for
    from inference.services.registry import model_version_register

    settings.STROKEAID["DEVICE"] = args.device
    user = get_user_model().objects.create_superuser("bench", "bench@example.org", "x-Bench-123")
    phantom = generate_case(etiology="cardioembolic", seed=7)
    case = case_create(user=user, code="BENCH-0001", etiology="cardioembolic", confirmed=True)
    series_create_from_phantom(case=case, phantom=phantom, uid_stem="99")
    label_set = LabelSet.objects.get(is_active=True)
    labels = list(Label.objects.filter(label_set=label_set).order_by("value"))
    spec = ModelSpec(
        label_values=tuple(lab.value for lab in labels),
        label_names=tuple(lab.name for lab in labels),
        encoder=args.encoder,
    )
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(Path(tmp) / "w.pt", model=build_from_spec(spec), spec=spec)
        model_row = model_version_register(
            name="bench",
            checkpoint_file=ckpt,
            spec=spec.to_dict(),
            label_set=label_set,
            activate=True,
        )
        bare, _ = load_model(ckpt)
    bare = bare.eval().to(args.device)
    predictor = predictor_for(model_row, device=args.device)
    x = predictor.preprocess(phantom.images).to(args.device)

    def platform() -> float:
        job = PredictionJob.objects.create(case=case, model=model_row, created_by=user)
        t = time.perf_counter()
        prediction_run(job=job)
        return time.perf_counter() - t

    def baseline() -> float:
        t = time.perf_counter()
        with torch.no_grad():
            bare(x)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - t

    platform()  # warm-up: ONNX export/cache, allocator
    baseline()
    plat, base = [], []
    for _ in range(args.repeats):  # interleaved: both see the same machine load
        plat.append(platform())
        base.append(baseline())
    result = {
        "benchmark": "predict",
        "device": args.device,
        "backend": predictor.backend,
        "threads": torch.get_num_threads(),
        "shape": list(phantom.images["DWI"].shape),
        "platform_seconds": [round(v, 4) for v in plat],
        "baseline_seconds": [round(v, 4) for v in base],
        "platform_median": round(statistics.median(plat), 4),
        "baseline_median": round(statistics.median(base), 4),
        "ratio": round(statistics.median(plat) / statistics.median(base), 3),
        "target": 1.0,
    }
    result["meets_target"] = result["ratio"] <= 1.0
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
