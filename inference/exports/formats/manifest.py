"""The export tree: files written once with their checksums, then zipped reproducibly.

Reproducibility rules (same inputs -> same bytes, except the manifest's timestamps):

* every zip entry has the fixed date 1980-01-01 00:00 and fixed permissions, and entries
  are written in sorted order;
* ``.nii.gz`` files are gzip streams with ``mtime=0`` and no file name in the header;
* already compressed files (``.nii.gz``) are STORED in the zip (deflating them again costs
  time and gains nothing); text and DICOM files are deflated.
"""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
import zlib
from pathlib import Path
from typing import IO, Any

import nibabel as nib
import numpy as np
import numpy.typing as npt

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
#: gzip of NIfTI files: level 1 with zlib's RLE strategy (matches at distance 1 only). Noisy
#: MR intensities gain little from LZ77 searching; the runs of background zeros and of label
#: values are what compresses, and RLE finds them 3-5x faster than level 1's default strategy
#: at the same or smaller size. The stream is ordinary gzip (every reader decodes it).
GZIP_LEVEL = 1


def nifti_gz_bytes(array: npt.NDArray[Any], affine: Any, *, labels: bool = False) -> bytes:
    """A (z, y, x) array as gzipped NIfTI-1 with ``affine`` (voxel (x, y, z) -> RAS mm).

    The array is transposed to NIfTI's (x, y, z) index order as a view; nibabel then writes
    it in Fortran order, i.e. the stored C-order bytes, without a copy. qform and sform both
    carry the affine (code 1, scanner) so every reader agrees on the geometry.
    """
    matrix = np.asarray(affine, dtype=np.float64)
    data = np.asarray(array)
    if labels:
        data = data.astype(np.uint8, copy=False)
    image = nib.Nifti1Image(data.transpose(2, 1, 0), matrix)
    image.header.set_xyzt_units("mm")
    image.set_qform(matrix, code=1)
    image.set_sform(matrix, code=1)
    if labels:
        image.header["intent_name"] = b"labels"
    # zlib's gzip wrapper (wbits 31) writes no file name and mtime 0: identical input bytes
    # give identical output bytes.
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31, 9, zlib.Z_RLE)
    return packer.compress(image.to_bytes()) + packer.flush()


def json_bytes(value: Any) -> bytes:
    """Stable JSON (sorted keys, 2-space indent, trailing newline)."""
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


class ExportTree:
    """Files of one export under a working folder, with their SHA-256 (thread-safe adds)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.checksums: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, data: bytes) -> str:
        """Writes ``data`` as entry ``name`` ('/'-separated, relative); returns its SHA-256."""
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"bad entry name {name!r}")
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if name in self.checksums:
                raise ValueError(f"duplicate entry {name!r}")
            self.checksums[name] = digest
            self.sizes[name] = len(data)
        return digest

    def write_zip(self, out: IO[bytes], *, manifest: bytes) -> None:
        """Writes every entry plus ``manifest.json`` (sorted, fixed dates) into ``out``."""
        entries = sorted([*self.checksums, "manifest.json"])
        with zipfile.ZipFile(out, "w", allowZip64=True) as archive:
            for name in entries:
                stored = name.endswith(".gz")
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                info.create_system = 3  # unix: the same bytes whichever OS exports
                if name == "manifest.json":
                    archive.writestr(info, manifest, compresslevel=6)
                    continue
                with (self.root / name).open("rb") as src, archive.open(info, "w") as dst:
                    while chunk := src.read(4 * 1024 * 1024):
                        dst.write(chunk)
