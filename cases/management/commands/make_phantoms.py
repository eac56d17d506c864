"""``manage.py make_phantoms``: write synthetic DWI/ADC/FLAIR phantoms (demo data, benchmarks)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from cases.phantoms import ETIOLOGIES, PhantomCase, make_phantoms

_FORMATS = {"dicom": ("dicom",), "nifti": ("nifti",), "both": ("dicom", "nifti")}


class Command(BaseCommand):
    help = (
        "Generate synthetic stroke MRI phantoms (DWI, ADC, FLAIR as DICOM and/or NIfTI, "
        "ground-truth masks and labels.csv). No patient data involved."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cases", type=int, default=10, help="number of cases")
        parser.add_argument("--seed", type=int, default=0, help="batch seed (reproducible)")
        parser.add_argument("--out", type=Path, required=True, help="output directory")
        parser.add_argument(
            "--shape", type=int, nargs=3, default=(25, 256, 256), metavar=("Z", "Y", "X")
        )
        parser.add_argument("--format", choices=sorted(_FORMATS), default="both")
        parser.add_argument(
            "--etiologies",
            nargs="+",
            choices=ETIOLOGIES,
            default=None,
            help="etiologies assigned round-robin (default: all five)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        n = options["cases"]
        if n < 1:
            raise CommandError("--cases must be >= 1")
        if min(options["shape"]) < 4:
            raise CommandError("--shape values must be >= 4")
        out: Path = options["out"]
        start = time.perf_counter()
        last = [start]

        def progress(i: int, total: int, case: PhantomCase) -> None:
            now = time.perf_counter()
            self.stdout.write(
                f"[{i}/{total}] {case.code} {case.etiology}: {len(case.lesions)} lesion(s), "
                f"{case.lesion_volume_ml:.1f} ml ({now - last[0]:.2f} s)"
            )
            last[0] = now

        make_phantoms(
            out=out,
            cases=n,
            seed=options["seed"],
            shape=tuple(options["shape"]),
            etiologies=options["etiologies"],
            formats=_FORMATS[options["format"]],
            progress=progress,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {n} phantom case(s) to {out} in {time.perf_counter() - start:.1f} s"
            )
        )
