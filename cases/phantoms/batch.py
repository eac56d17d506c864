"""Batch generation: many phantom cases on disk plus a ``labels.csv`` (demo data, benchmarks).

Layout under ``out``::

    labels.csv                      code, etiology, label_value, n_lesions, lesion_volume_ml, seed
    clinical.csv                    code + the work-up (empty = unknown), hidden_mechanism
    PH-0001/DWI/*.dcm ADC/*.dcm FLAIR/*.dcm    (formats include "dicom")
    PH-0001/DWI.nii.gz ADC.nii.gz FLAIR.nii.gz (formats include "nifti")
    PH-0001/mask.nii.gz                        (always: the ground truth)
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from pydicom.uid import ExplicitVRLittleEndian

from .anatomy import DEFAULT_SHAPE
from .dicom import write_dicom_series
from .generator import DEFAULT_LABEL_VALUES, SERIES_KINDS, PhantomCase, generate_case
from .nifti import write_mask_nifti, write_nifti

FORMATS = ("dicom", "nifti")
#: The work-up columns of clinical.csv (the REST contract's keys, in its order).
WORKUP_COLUMNS = (
    "atrial_fibrillation",
    "cardiac_source",
    "stenosis_50",
    "vessel_imaging",
    "cardiac_workup",
    "lacunar_syndrome",
    "other_cause",
    "age",
    "sex",
    "nihss",
)
LABELS_CSV_COLUMNS = ("code", "etiology", "label_value", "n_lesions", "lesion_volume_ml", "seed")


def case_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th case of a batch (stable, independent streams per case)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def make_phantoms(
    *,
    out: Path | str,
    cases: int,
    seed: int,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    etiologies: Sequence[str] | None = None,
    formats: Iterable[str] = FORMATS,
    label_values: Mapping[str, int] = DEFAULT_LABEL_VALUES,
    transfer_syntax: str = ExplicitVRLittleEndian,
    progress: Callable[[int, int, PhantomCase], None] | None = None,
) -> list[PhantomCase]:
    """Generate ``cases`` phantoms and write them under ``out``.

    Args:
        out: output directory (created).
        cases: number of cases.
        seed: batch seed; case ``i`` uses :func:`case_seed` ``(seed, i)`` (in labels.csv).
        shape: (nz, ny, nx) of every volume.
        etiologies: etiology names assigned round-robin. ``None`` = all five default names
            in label-value order (atherothrombotic, cardioembolic, cryptogenic, lacunar,
            other), so classes are balanced.
        formats: subset of ``("dicom", "nifti")``; the mask is always written as NIfTI.
        label_values: etiology name -> mask value.
        transfer_syntax: DICOM transfer syntax of the written series.
        progress: called as ``progress(i, cases, case)`` after each case (1-based ``i``).

    Returns:
        The generated cases (codes ``PH-0001``, ``PH-0002``, ...).
    """
    fmts = set(formats)
    unknown = fmts - set(FORMATS)
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; expected {FORMATS}")
    names = list(etiologies) if etiologies else sorted(label_values, key=label_values.__getitem__)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    result: list[PhantomCase] = []
    rows = []
    for i in range(cases):
        s = case_seed(seed, i)
        case = generate_case(
            etiology=names[i % len(names)],
            seed=s,
            shape=shape,
            label_values=label_values,
            code=f"PH-{i + 1:04d}",
        )
        case_dir = root / case.code
        for kind in SERIES_KINDS:
            if "dicom" in fmts:
                write_dicom_series(case, kind, case_dir / kind, transfer_syntax=transfer_syntax)
            if "nifti" in fmts:
                write_nifti(case, kind, case_dir / f"{kind}.nii.gz")
        write_mask_nifti(case, case_dir / "mask.nii.gz")
        rows.append(
            {
                "code": case.code,
                "etiology": case.etiology,
                "label_value": case.label_value,
                "n_lesions": len(case.lesions),
                "lesion_volume_ml": f"{case.lesion_volume_ml:.3f}",
                "seed": case.seed,
            }
        )
        result.append(case)
        if progress is not None:
            progress(i + 1, cases, case)
    with (root / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABELS_CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with (root / "clinical.csv").open("w", newline="") as fh:
        fields = ["code", *WORKUP_COLUMNS, "hidden_mechanism"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for case in result:
            values = {**case.workup, "hidden_mechanism": case.hidden_mechanism}
            writer.writerow(
                {"code": case.code, **{k: _csv_value(values.get(k)) for k in fields[1:]}}
            )
    return result


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
