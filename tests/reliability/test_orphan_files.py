"""No orphan files: the sweep deletes stored files that no row references once they are older
than the grace period, keeps referenced and young ones, and clears stale upload spools."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from cases import storage

pytestmark = [pytest.mark.reliability, pytest.mark.django_db]


def _age(key_or_path: str | Path, hours: float) -> None:
    path = Path(key_or_path) if isinstance(key_or_path, Path) else storage.local_path(key_or_path)
    assert path is not None
    then = time.time() - hours * 3600
    os.utime(path, (then, then))


def _files() -> set[str]:
    root = storage.local_path("")
    assert root is not None
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_sweep_deletes_only_old_unreferenced_files(
    phantom_series: dict[str, Any], make_phantom_case: Any, registered_model: Any
) -> None:
    make_phantom_case("lacunar", seed=61)  # with an approved mask
    model = registered_model()
    onnx = storage.write_bytes(f"{model.weights_key}.abcdef0123456789.onnx", b"onnx")
    from annotation.selectors import mask_keys_referenced
    from cases.selectors import volume_keys_referenced

    # Only what rows of this test reference: other tests' files (rolled back rows) may be there.
    referenced = {*volume_keys_referenced(), *mask_keys_referenced(), model.weights_key}
    assert len(referenced) >= 7 and referenced <= _files()
    # What a killed upload, prediction, export and staging leave behind.
    orphans = [
        storage.write_array("volumes/999999/0123456789abcdef.npy", np.zeros(4))[0],
        storage.write_array("masks/999999/1/r00001-deadbeef.npy", np.zeros(4))[0],
        storage.write_array("predictions/999999/1/labels.npy", np.zeros(4))[0],
        storage.write_bytes("exports/999999/export.zip", b"zip"),
        storage.write_bytes("staging/0123abcd/upload/00000", b"dicom"),
    ]
    young = storage.write_array("volumes/999998/0123456789abcdef.npy", np.zeros(4))[0]
    for key in [*orphans, *referenced, onnx]:
        _age(key, hours=3)
    spool = Path(settings.FILE_UPLOAD_TEMP_DIR) / "tmpupload.upload"
    spool.write_bytes(b"x" * 1024)
    _age(spool, hours=3)

    out = io.StringIO()
    call_command("sweep_files", "--dry-run", stdout=out)
    assert set(orphans) <= set(out.getvalue().split())
    assert all(storage.exists(k) for k in orphans)  # a dry run deletes nothing

    call_command("sweep_files", stdout=io.StringIO())
    left = _files()
    assert not set(orphans) & left
    assert referenced <= left and onnx in left and young in left
    assert not spool.exists()
