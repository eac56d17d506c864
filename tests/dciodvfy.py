"""David Clunie's IOD validator (Debian's ``dicom3tools``) on objects the platform writes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

DCIODVFY = shutil.which("dciodvfy") or "/usr/bin/dciodvfy"


def dciodvfy_errors(data: bytes) -> list[str]:
    """The validator's "Error" lines for one PS3.10 file's bytes (warnings are not errors).

    Skips the test when dicom3tools is missing (``make test`` installs it)."""
    if not Path(DCIODVFY).exists():
        pytest.skip("Debian's dicom3tools is not installed (make test installs it)")
    with tempfile.NamedTemporaryFile(suffix=".dcm") as fh:
        fh.write(data)
        fh.flush()
        result = subprocess.run(
            [DCIODVFY, fh.name], capture_output=True, text=True, timeout=60, check=False
        )
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if line.startswith("Error")]
