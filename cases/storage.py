"""The one storage interface: volumes, masks, model weights, staging files and exports.

Everything the platform stores goes through these functions; nothing else builds paths.
Keys are relative, '/'-separated names inside Django's ``default`` storage (local disk under
``STROKEAID_DATA_DIR`` or an S3-compatible bucket, chosen by settings).

Arrays are stored as ``.npy`` (little-endian, C order): loading one is a single read with no
decoding, so the viewer, training and prediction never pay for decompression.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, storages


def _storage() -> Storage:
    return storages["default"]


def is_local() -> bool:
    """True when keys map to files on this machine (memory-mapping possible)."""
    return isinstance(_storage(), FileSystemStorage)


# --- key builders --------------------------------------------------------------------------
def volume_key(*, series_id: int, digest: str) -> str:
    return f"volumes/{series_id}/{digest[:16]}.npy"


def mask_key(*, series_id: int, annotation_id: int, revision: int) -> str:
    return f"masks/{series_id}/{annotation_id}/r{revision:05d}-{uuid.uuid4().hex[:8]}.npy"


def prediction_prefix(*, prediction_id: int) -> str:
    return f"predictions/{prediction_id}"


def prediction_key(*, prediction_id: int, series_id: int, name: str) -> str:
    return f"{prediction_prefix(prediction_id=prediction_id)}/{series_id}/{name}"


def model_key(*, name: str) -> str:
    return f"models/{name}"


def staging_key(*, name: str) -> str:
    return f"staging/{uuid.uuid4().hex}/{name}"


def export_key(*, export_id: int, name: str) -> str:
    return f"exports/{export_id}/{name}"


def run_key(*, run_id: int, name: str) -> str:
    return f"runs/{run_id}/{name}"


# --- bytes ---------------------------------------------------------------------------------
def write_bytes(key: str, data: bytes | BinaryIO) -> str:
    """Writes ``data`` at ``key`` (replacing it) and returns the key.

    On local disk the file is written to a temporary name and renamed, so a reader (or a
    killed writer) never sees half a file.
    """
    storage = _storage()
    if isinstance(storage, FileSystemStorage):
        path = Path(storage.path(key))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, 1024 * 1024)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _track(key)
        return key
    if storage.exists(key):
        storage.delete(key)
    content = ContentFile(data) if isinstance(data, bytes | bytearray) else File(data)
    saved = storage.save(key, content)
    _track(saved)
    return saved


def read_bytes(key: str) -> bytes:
    with _storage().open(key, "rb") as fh:
        return cast(bytes, fh.read())


@contextmanager
def open_file(key: str) -> Iterator[BinaryIO]:
    with _storage().open(key, "rb") as fh:
        yield fh  # type: ignore[misc]


def local_path(key: str) -> Path | None:
    """The file behind ``key`` on local disk, or None for remote storage."""
    storage = _storage()
    return Path(storage.path(key)) if isinstance(storage, FileSystemStorage) else None


@contextmanager
def as_local_file(key: str) -> Iterator[Path]:
    """A local path for ``key``: the file itself on disk, a temporary copy otherwise."""
    path = local_path(key)
    if path is not None:
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / Path(key).name
        with _storage().open(key, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
        yield target


def exists(key: str) -> bool:
    return bool(key) and _storage().exists(key)


def size(key: str) -> int:
    return int(_storage().size(key))


def delete(key: str) -> None:
    """Deletes ``key`` if present (idempotent)."""
    if key and _storage().exists(key):
        _storage().delete(key)


def delete_prefix(prefix: str) -> None:
    """Deletes every key under ``prefix`` (a folder)."""
    storage = _storage()
    if isinstance(storage, FileSystemStorage):
        shutil.rmtree(storage.path(prefix), ignore_errors=True)
        return
    dirs, files = storage.listdir(prefix)
    for name in files:
        storage.delete(f"{prefix.rstrip('/')}/{name}")
    for name in dirs:
        delete_prefix(f"{prefix.rstrip('/')}/{name}")


# --- arrays --------------------------------------------------------------------------------
def array_to_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def write_array(key: str, array: np.ndarray) -> tuple[str, str, int]:
    """Stores ``array`` as ``.npy``; returns ``(key, sha256 of the bytes, size)``."""
    data = array_to_bytes(array)
    write_bytes(key, data)
    return key, hashlib.sha256(data).hexdigest(), len(data)


def read_array(key: str, *, mmap: bool = False) -> np.ndarray:
    """Loads a stored array; ``mmap=True`` memory-maps it on local disk (slices read lazily)."""
    path = local_path(key)
    if path is not None:
        return cast(np.ndarray, np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False))
    return cast(np.ndarray, np.load(io.BytesIO(read_bytes(key)), allow_pickle=False))


def sha256_of(key: str) -> str:
    digest = hashlib.sha256()
    with _storage().open(key, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- all-or-nothing writes -----------------------------------------------------------------
_written: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "strokeaid_storage_written", default=None
)


@contextmanager
def transactional(using: str | None = None) -> Iterator[list[str]]:
    """``transaction.atomic`` that also deletes the files written inside it if it fails.

    Files are written before the rows that point at them; when the block raises, the database
    rolls back and every key written through this module inside the block is removed, so an
    upload, a mask save or a model registration leaves nothing half-made. Nested blocks hand
    their keys to the enclosing block when they succeed.
    """
    from django.db import transaction

    keys: list[str] = []
    token = _written.set(keys)
    try:
        with transaction.atomic(using=using):
            yield keys
    except BaseException:
        for key in keys:
            # Best effort: the original error is the one that matters.
            with contextlib.suppress(Exception):
                delete(key)
        raise
    finally:
        _written.reset(token)
    outer = _written.get()
    if outer is not None:
        outer.extend(keys)


def _track(key: str) -> None:
    keys = _written.get()
    if keys is not None:
        keys.append(key)


# --- orphan sweep ----------------------------------------------------------------------------
# Every app that stores files under a top-level prefix registers which keys its rows still
# reference (AppConfig.ready); a file under a registered prefix that no row references and
# that is older than the grace period is an orphan: a volume written by an upload whose server
# was killed before the commit, a prediction of a deleted case, a staged upload never ingested.
_owners: dict[str, Callable[[], Iterable[str]]] = {}


def register_key_owner(prefix: str, referenced: Callable[[], Iterable[str]]) -> None:
    """Declares that the rows behind ``prefix`` (e.g. ``"volumes"``) reference ``referenced()``
    keys; an entry ending with ``*`` keeps every key that starts with the rest of it."""
    _owners[prefix.strip("/")] = referenced


def _walk(prefix: str) -> Iterator[str]:
    storage = _storage()
    try:
        dirs, files = storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        yield f"{prefix}/{name}"
    for name in dirs:
        yield from _walk(f"{prefix}/{name}")


def orphans_sweep(*, older_than: timedelta, dry_run: bool = False) -> list[str]:
    """Deletes (or with ``dry_run`` only lists) unreferenced files under the registered
    prefixes that were last modified more than ``older_than`` ago; returns their keys.

    The grace period keeps files of work in flight (written before their row commits)."""
    storage = _storage()
    cutoff = datetime.now(UTC) - older_than
    removed: list[str] = []
    for prefix, referenced in sorted(_owners.items()):
        keep = set()
        keep_below: list[str] = []
        for key in referenced():
            if key.endswith("*"):
                keep_below.append(key[:-1])
            elif key:
                keep.add(key)
        for key in _walk(prefix):
            if key in keep or (keep_below and key.startswith(tuple(keep_below))):
                continue
            try:
                modified = storage.get_modified_time(key)
            except (FileNotFoundError, NotImplementedError):
                continue
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=UTC)
            if modified > cutoff:
                continue
            if not dry_run:
                storage.delete(key)
            removed.append(key)
    return removed
