"""Helpers for the ingestion tests: phantom DICOM series, hand-built datasets, zips, storage.

Real files only: phantom series written by ``cases.phantoms`` (pydicom encoders), pydicom's
and nibabel's shipped sample files, and small datasets built with pydicom.
"""

from __future__ import annotations

import functools
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from cases.phantoms import PhantomCase, generate_case, write_dicom_series

SHAPE = (8, 40, 40)
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@functools.lru_cache(maxsize=4)
def phantom(seed: int = 11) -> PhantomCase:
    """A small phantom case (generated once per seed per test process)."""
    return generate_case(etiology="cardioembolic", seed=seed, shape=SHAPE)


@functools.lru_cache(maxsize=32)
def _series_dir(seed: int, kind: str, transfer_syntax: str, extra_phi: bool) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"phantom-{kind}-"))
    write_dicom_series(
        phantom(seed), kind, out, transfer_syntax=transfer_syntax, extra_phi=extra_phi
    )
    return out


def series_files(
    kind: str,
    *,
    seed: int = 11,
    transfer_syntax: str = ExplicitVRLittleEndian,
    extra_phi: bool = False,
) -> list[Path]:
    """The phantom's ``kind`` series as DICOM files (cached), in directory (not slice) order."""
    return sorted(_series_dir(seed, kind, str(transfer_syntax), extra_phi).glob("*.dcm"))


def uploaded(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def uploads_of(paths: list[Path]) -> list[SimpleUploadedFile]:
    return [uploaded(p.name, p.read_bytes()) for p in paths]


def zip_bytes(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def storage_root() -> Path:
    return Path(settings.STORAGES["default"]["OPTIONS"]["location"])


def stored_files() -> set[str]:
    """Every file under the storage root (relative paths)."""
    root = storage_root()
    if not root.exists():
        return set()
    return {
        str(Path(dirpath, name).relative_to(root))
        for dirpath, _dirs, names in os.walk(root)
        for name in names
    }


def data_dir_bytes() -> bytes:
    """Every byte under DATA_DIR (stored files and the SQLite database), concatenated."""
    chunks = []
    for dirpath, _dirs, names in os.walk(settings.STROKEAID["DATA_DIR"]):
        for name in names:
            try:
                chunks.append(Path(dirpath, name).read_bytes())
            except OSError:
                continue
    return b"\n".join(chunks)


def mr_dataset(
    *,
    ipp: tuple[float, float, float],
    iop: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    pixels: np.ndarray | None = None,
    series_uid: str = "1.2.3.4.5.6",
    study_uid: str = "1.2.3.4.5",
    spacing: tuple[float, float] = (0.9, 0.8),
    instance: int = 1,
    **attrs: Any,
) -> bytes:
    """A minimal MR image as DICOM Part 10 bytes (uint16 pixels by default)."""
    if pixels is None:
        pixels = np.arange(6 * 5, dtype=np.uint16).reshape(6, 5) + instance
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    sop_uid = attrs.pop("SOPInstanceUID", generate_uid())
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.3.4.5.9"
    ds.Modality = "MR"
    ds.PatientName = "TEST^PATIENT"
    ds.PatientID = "PID-0001"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in ipp]
    ds.ImageOrientationPatient = [float(v) for v in iop]
    ds.PixelSpacing = [float(v) for v in spacing]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = pixels.dtype.itemsize * 8
    ds.HighBit = pixels.dtype.itemsize * 8 - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
