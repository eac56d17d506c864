"""Zips of an upload, read safely: zip slip, encrypted and nested archives refused, entry
count, total and per-entry inflation capped while extracting, plainly non-image names skipped."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import IO

from django.utils.translation import gettext as _

from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


_RATIO_MIN_BYTES = 1024 * 1024


_CHUNK = 1024 * 1024


#: Inside a zip, names that are plainly not images: skipped with a note rather than refused.
_ZIP_SKIP_SUFFIXES = (
    ".txt", ".htm", ".html", ".xml", ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ini",
    ".inf", ".exe", ".dll", ".js", ".css", ".json", ".csv", ".md", ".log", ".bat", ".sh",
    ".db",
)  # fmt: skip


_ZIP_SKIP_NAMES = {"dicomdir", "thumbs.db", "desktop.ini", "autorun.inf", "lockfile"}


def _zip_name_check(entry: str, *, archive: str) -> None:
    """Zip slip: absolute paths, drive letters, '..' components and NULs are refused."""
    normalized = entry.replace("\\", "/")
    parts = normalized.split("/")
    if (
        normalized.startswith("/")
        or "\x00" in entry
        or (len(normalized) >= 2 and normalized[1] == ":")
        or ":" in parts[0]
        or ".." in parts
    ):
        raise ApplicationError(
            _("The zip contains an unsafe path."), {"file": archive, "entry": entry[:200]}
        )


def zip_entries(fh: IO[bytes], *, archive: str) -> Iterator[tuple[str, bytes | None]]:
    """(entry name, bytes) of a zip's files, with every bomb and slip check; bytes None for
    entries to skip (with the entry name for the note)."""
    max_entries = int(app_settings.ZIP_MAX_ENTRIES)
    max_total = int(app_settings.ZIP_MAX_TOTAL_BYTES)
    max_ratio = float(app_settings.ZIP_MAX_RATIO)
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ApplicationError(_("Not a valid zip file."), {"file": archive}) from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise ApplicationError(
                _("The zip has too many entries (at most %(limit)d).") % {"limit": max_entries},
                {"file": archive, "entries": len(infos), "limit": max_entries},
            )
        declared = 0
        for info in infos:
            _zip_name_check(info.filename, archive=archive)
            declared += max(info.file_size, 0)
            if info.flag_bits & 0x1:
                raise ApplicationError(
                    _("Encrypted zips are not supported."),
                    {"file": archive, "entry": info.filename},
                )
            if info.file_size > _RATIO_MIN_BYTES and (
                info.compress_size <= 0 or info.file_size / info.compress_size > max_ratio
            ):
                raise ApplicationError(
                    _("A zip entry is compressed suspiciously well (zip bomb?)."),
                    {"file": archive, "entry": info.filename, "limit_ratio": max_ratio},
                )
        if declared > max_total:
            raise ApplicationError(
                _("The zip expands beyond the allowed size (%(limit)d bytes).")
                % {"limit": max_total},
                {"file": archive, "limit_bytes": max_total},
            )
        actual_total = 0
        for info in infos:
            if info.is_dir():
                continue
            base = PurePosixPath(info.filename.replace("\\", "/")).name
            lower = base.lower()
            if (
                lower in _ZIP_SKIP_NAMES
                or base.startswith(".")
                or info.filename.startswith("__MACOSX/")
                or lower.endswith(_ZIP_SKIP_SUFFIXES)
            ):
                yield info.filename, None
                continue
            if lower.endswith(".zip"):
                raise ApplicationError(
                    _("Zips inside a zip are not supported; upload them one by one."),
                    {"file": archive, "entry": info.filename},
                )
            chunks: list[bytes] = []
            count = 0
            try:
                with zf.open(info) as member:
                    while True:
                        chunk = member.read(_CHUNK)
                        if not chunk:
                            break
                        count += len(chunk)
                        actual_total += len(chunk)
                        if count > info.file_size or actual_total > max_total:
                            raise ApplicationError(
                                _("The zip expands beyond its declared or allowed size."),
                                {"file": archive, "entry": info.filename},
                            )
                        if (
                            count > _RATIO_MIN_BYTES
                            and count / max(info.compress_size, 1) > max_ratio
                        ):
                            raise ApplicationError(
                                _("A zip entry is compressed suspiciously well (zip bomb?)."),
                                {"file": archive, "entry": info.filename, "limit_ratio": max_ratio},
                            )
                        chunks.append(chunk)
            except ApplicationError:
                raise
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                NotImplementedError,
                RuntimeError,
            ) as exc:
                raise ApplicationError(
                    _("A zip entry could not be extracted (damaged or unsupported compression)."),
                    {"file": archive, "entry": info.filename},
                ) from exc
            data = b"".join(chunks)
            if data[:4] in ZIP_MAGIC:
                raise ApplicationError(
                    _("Zips inside a zip are not supported; upload them one by one."),
                    {"file": archive, "entry": info.filename},
                )
            yield info.filename, data
