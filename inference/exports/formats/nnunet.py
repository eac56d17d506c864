"""nnU-Net v2 raw dataset layout (``DatasetXXX_Name/imagesTr``, ``labelsTr``, ``dataset.json``).

* Channels are fixed across cases: ``_0000`` DWI, ``_0001`` ADC, ``_0002`` FLAIR. nnU-Net
  needs every channel for every case; a case missing a kind is SKIPPED with a note in the
  manifest rather than given a zero-filled channel, because a blank channel would teach the
  network that a missing sequence looks like an empty brain.
* All channels and the label of a case share the reference grid (DWI, else FLAIR); other
  series are resampled onto it through their affines (images trilinear, labels nearest).
* The training and validation splits of the snapshot go to ``imagesTr``/``labelsTr`` (nnU-Net
  runs its own cross-validation inside them); the test split goes to ``imagesTs`` with
  ``labelsTs`` beside it for evaluation.
* Labels must be consecutive integers from 0 in nnU-Net: label values that are not are
  remapped, and the mapping is recorded in the manifest.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .base import ExportCase, Progress
from .manifest import ExportTree, json_bytes, nifti_gz_bytes

DATASET_ID = 501  # nnU-Net reserves ids below 500 for its own benchmark datasets
DATASET_NAME = f"Dataset{DATASET_ID:03d}_StrokeAID"
CHANNELS = ("DWI", "ADC", "FLAIR")
#: Threads writing cases: zlib and numpy release the GIL, so two cores both compress.
WORKERS = 2


def label_mapping(values: list[int]) -> dict[int, int]:
    """``{label value: nnU-Net label}`` with nnU-Net labels 1..n in value order."""
    return {v: i for i, v in enumerate(sorted(values), start=1)}


def export_nnunet(
    *,
    cases: list[ExportCase],
    tree: ExportTree,
    labels: dict[str, int],
    progress: Progress,
    notes: list[dict[str, Any]],
) -> dict[str, Any]:
    """Writes the nnU-Net raw dataset of ``cases`` into ``tree``; returns manifest details.

    Args:
        labels: ``{label name: voxel value}`` of the active label set.
        notes: receives ``{"case", "note"}`` for skipped cases.
    """
    mapping = label_mapping(list(labels.values()))
    lut = np.zeros(256, dtype=np.uint8)
    for value, target in mapping.items():
        lut[value] = target
    identity = all(v == t for v, t in mapping.items())

    usable = []
    for case in cases:
        missing = [k for k in CHANNELS if k not in case.series]
        if missing:
            notes.append(
                {
                    "case": case.name,
                    "note": "skipped: nnU-Net needs every channel; missing " + ", ".join(missing),
                }
            )
            continue
        usable.append(case)

    def write_case(case: ExportCase) -> str:
        folder = "Ts" if case.split == "test" else "Tr"
        reference = case.reference()
        affine = reference.affine
        for index, kind in enumerate(CHANNELS):
            image = case.image_on(kind, reference)
            tree.add(
                f"{DATASET_NAME}/images{folder}/{case.name}_{index:04d}.nii.gz",
                nifti_gz_bytes(image, affine),
            )
        mask = case.mask_on(reference)
        if not identity:
            mask = lut[mask]
        tree.add(
            f"{DATASET_NAME}/labels{folder}/{case.name}.nii.gz",
            nifti_gz_bytes(mask, affine, labels=True),
        )
        return folder

    folders: list[str] = []
    # Workers only read files and compress; progress (a database write) stays on this thread.
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for folder in pool.map(write_case, usable):
            folders.append(folder)
            progress(len(folders) / max(1, len(usable)))
    n_training = folders.count("Tr")
    dataset = {
        "name": "StrokeAID",
        "description": "Ischemic stroke lesions labelled by etiology (TOAST).",
        "channel_names": {str(i): kind for i, kind in enumerate(CHANNELS)},
        "labels": {
            "background": 0,
            **{name: mapping[v] for name, v in sorted(labels.items(), key=lambda kv: kv[1])},
        },
        "numTraining": n_training,
        "file_ending": ".nii.gz",
    }
    tree.add(f"{DATASET_NAME}/dataset.json", json_bytes(dataset))
    return {
        "dataset": DATASET_NAME,
        "channels": list(CHANNELS),
        "label_mapping": {str(v): t for v, t in mapping.items()},
        "num_training": n_training,
        "num_test": folders.count("Ts"),
        "exported_cases": [c.name for c in usable],
    }
