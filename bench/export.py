"""Benchmark: nnU-Net export of 50 phantom cases (25 x 256 x 256, DWI/ADC/FLAIR + mask) vs
writing the same volumes with nibabel in a bare loop (``Nifti1Image(...).to_filename``).

Prints JSON: median wall times of several runs and their ratio (target <= 1.5).
Run: ``.venv/bin/python bench/export.py [--cases 50] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=5, help="distinct phantoms generated")
    args = parser.parse_args()
    django_setup()

    import secrets

    import nibabel as nib
    import numpy as np

    from accounts.services import user_create
    from annotation.services import annotation_import_mask
    from cases import storage
    from cases.models import Series
    from cases.phantoms import ETIOLOGIES, generate_case
    from cases.services.case import case_create
    from cases.services.series import series_create_from_phantom
    from inference.exports.services import export_build
    from inference.models import ExportJob

    user = user_create(
        username="bench-export", password=secrets.token_urlsafe(16), roles=["data_manager"]
    )
    etiologies = list(ETIOLOGIES)
    phantoms = [
        generate_case(etiology=etiologies[i % len(etiologies)], seed=100 + i, shape=(25, 256, 256))
        for i in range(args.distinct)
    ]
    t0 = time.perf_counter()
    for n in range(args.cases):
        phantom = phantoms[n % len(phantoms)]
        etiology = etiologies[n % len(phantoms) % len(etiologies)]
        case = case_create(user=user, code=f"BX-{n:03d}", etiology=etiology, confirmed=True)
        series = series_create_from_phantom(case=case, phantom=phantom, uid_stem=f"9{n:04d}")
        annotation_import_mask(user=user, series=series["DWI"], mask=phantom.mask, state="approved")
    setup_s = time.perf_counter() - t0

    # The same arrays the export writes: stored volumes and masks, read from storage.
    volumes = []
    for series in Series.objects.select_related("volume").order_by("id"):
        volumes.append((storage.read_array(series.volume.key), series.affine))
    from annotation.models import Annotation

    for ann in Annotation.objects.select_related("current_revision", "series"):
        volumes.append((storage.read_array(ann.current_revision.key), ann.series.affine))

    def baseline() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            for i, (array, affine) in enumerate(volumes):
                image = nib.Nifti1Image(np.asarray(array).transpose(2, 1, 0), np.asarray(affine))
                image.to_filename(str(Path(tmp) / f"{i}.nii.gz"))
            return time.perf_counter() - start

    def export() -> tuple[float, int]:
        job = ExportJob.objects.create(format="nnunet", case_ids=None, created_by=user)
        start = time.perf_counter()
        job = export_build(job=job)
        elapsed = time.perf_counter() - start
        assert job.status == "done", job.error
        return elapsed, job.result_bytes

    base_times, export_times, sizes = [], [], []
    for _ in range(args.runs):
        base_times.append(baseline())
        seconds, size = export()
        export_times.append(seconds)
        sizes.append(size)
    base = statistics.median(base_times)
    exp = statistics.median(export_times)
    print(
        json.dumps(
            {
                "benchmark": "export_nnunet",
                "cases": args.cases,
                "shape": [25, 256, 256],
                "files": len(volumes),
                "setup_seconds": round(setup_s, 2),
                "baseline_nibabel_seconds": round(base, 3),
                "export_seconds": round(exp, 3),
                "ratio": round(exp / base, 3),
                "target_ratio": 1.5,
                "zip_bytes": sizes[-1],
                "runs": args.runs,
                "baseline_runs": [round(t, 3) for t in base_times],
                "export_runs": [round(t, 3) for t in export_times],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
