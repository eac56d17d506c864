"""What an upload is made of: its files (opened on demand), the cheap limits checked before
any byte is parsed, and what parsing and storing give back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from django.utils.translation import gettext as _

from cases.dicom import BuiltVolume, Skipped
from cases.models import Series
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, TooLargeError

from ..nifti_io import is_nifti_name

ProgressCallback = Callable[[float], None]


@dataclass
class UploadInput:
    """One uploaded file: its client-side name, size and a way to open it (seekable)."""

    name: str
    size: int
    opener: Callable[[], AbstractContextManager[IO[bytes]]]

    def read(self) -> bytes:
        with self.opener() as fh:
            fh.seek(0)
            return fh.read()


def upload_inputs_from_files(files: list[Any]) -> list[UploadInput]:
    """Wraps Django ``UploadedFile`` objects (or anything with name/size/seek/read)."""

    def opener_for(f: Any) -> Callable[[], AbstractContextManager[IO[bytes]]]:
        @contextmanager
        def _open() -> Iterator[IO[bytes]]:
            f.seek(0)
            yield f

        return _open

    return [
        UploadInput(name=display_name(getattr(f, "name", "") or "upload"), size=int(f.size),
                    opener=opener_for(f))
        for f in files
    ]  # fmt: skip


def display_name(name: str) -> str:
    """The base name a client sent (browsers may send paths), for messages only."""
    return PurePosixPath(str(name).replace("\\", "/")).name[:200] or "upload"


@dataclass
class ParsedUpload:
    volumes: list[BuiltVolume]
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class UploadResult:
    series: list[Series]
    skipped: list[dict[str, str]]


def upload_limits_check(*, inputs: list[UploadInput], kind: str | None) -> None:
    """Cheap checks before any parsing: count, total size, empties, ``kind``.

    Raises ``TooLargeError`` (413) above ``MAX_UPLOAD_BYTES``, ``ApplicationError`` (400)
    otherwise.
    """
    if not inputs:
        raise ApplicationError(_("No files were uploaded (use the 'files' field)."), {})
    if len(inputs) > app_settings.MAX_UPLOAD_FILES:
        raise ApplicationError(
            _("Too many files in one upload (at most %(limit)d); upload a zip instead.")
            % {"limit": app_settings.MAX_UPLOAD_FILES},
            {"file": inputs[app_settings.MAX_UPLOAD_FILES].name,
             "limit": app_settings.MAX_UPLOAD_FILES, "count": len(inputs)},
        )  # fmt: skip
    total = 0
    for item in inputs:
        total += item.size
        if total > app_settings.MAX_UPLOAD_BYTES:
            raise TooLargeError(
                _("The upload is too large (at most %(limit)d bytes).")
                % {"limit": app_settings.MAX_UPLOAD_BYTES},
                {"file": item.name, "limit_bytes": app_settings.MAX_UPLOAD_BYTES},
            )
        if item.size == 0:
            raise ApplicationError(_("The file is empty."), {"file": item.name})
    if kind not in (None, "") and kind not in Series.Kind.values:
        raise ApplicationError(
            _("Unknown series kind."),
            {"field": "kind", "kind": kind, "choices": Series.Kind.values},
        )
    for item in inputs:
        if is_nifti_name(item.name) and not kind:
            raise ApplicationError(
                _("A NIfTI upload needs a 'kind' (DWI, ADC, FLAIR, CT or OTHER)."),
                {"file": item.name, "field": "kind"},
            )
