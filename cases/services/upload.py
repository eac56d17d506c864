"""Uploads: DICOM files, zips of them and NIfTI to de-identified series, all or nothing.

Flow: ``upload_start`` checks the cheap limits (file count, total size, ``kind``), then either
ingests at once (``upload_ingest``: parse -> build volumes -> store, returns the series) or,
above ``STROKEAID["ASYNC_UPLOAD_BYTES"]``, stages the raw files in storage and queues
``upload_job_run`` as a django-q2 task after the commit (202 + job id).

Decisions (documented for users in the API errors):

* Rejected (400, nothing stored): empty files, files without the DICOM Part 10 preamble,
  truncated/undecodable DICOM, series with mixed sizes/orientations/spacings, unevenly spaced
  slices, several volumes at one position, zip slip names, encrypted zips, nested zips (one
  level only: a zip inside a zip is refused), zips over the entry/size/ratio caps, NIfTI
  without ``kind`` or with several volumes, a series already in the case. Too large: 413.
* Skipped with a note (``skipped`` in the 201 answer): non-image DICOM objects (reports,
  presentation states, ...), colour screen captures, and inside a zip the files that are
  plainly not images (``DICOMDIR``, ``.txt``, ``.html``, ``.pdf``, ``.jpg``, hidden files, macOS
  resource forks). An upload that leaves no image at all is a 400.
* ``kind`` names the kind of NIfTI files (required for them); for DICOM the kind is read from
  the header, and ``kind`` only fills in series whose header gave no clue (OTHER).
* Zip bombs: the entry count and the declared sizes are checked first, then the actual
  inflated bytes are counted while extracting (declared sizes can lie). The per-entry ratio
  cap applies to entries above 1 MiB: a small blank slice legitimately deflates >200x, and
  small entries are bounded by the entry count and total size caps anyway.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any, BinaryIO, cast

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Case, Series, Study, UploadJob
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, TooLargeError
from strokeaid_site.events import job_event_send

from .audit import audit_record
from .dicom_io import BuiltVolume, DicomSlice, Skipped, dicom_read, dicom_volumes_build
from .nifti_io import is_nifti_name, nifti_read
from .series import series_create_from_array

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_RATIO_MIN_BYTES = 1024 * 1024
_CHUNK = 1024 * 1024
#: Inside a zip, names that are plainly not images: skipped with a note rather than refused.
_ZIP_SKIP_SUFFIXES = (
    ".txt", ".htm", ".html", ".xml", ".pdf", ".jpg", ".jpeg", ".png", ".gif", ".bmp", ".ini",
    ".inf", ".exe", ".dll", ".js", ".css", ".json", ".csv", ".md", ".log", ".bat", ".sh",
    ".db",
)  # fmt: skip
_ZIP_SKIP_NAMES = {"dicomdir", "thumbs.db", "desktop.ini", "autorun.inf", "lockfile"}


# --- inputs ---------------------------------------------------------------------------------
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
        UploadInput(name=_display_name(getattr(f, "name", "") or "upload"), size=int(f.size),
                    opener=opener_for(f))
        for f in files
    ]  # fmt: skip


def _display_name(name: str) -> str:
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


# --- limits ---------------------------------------------------------------------------------
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


# --- parsing ----------------------------------------------------------------------------------
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


def _zip_entries(fh: IO[bytes], *, archive: str) -> Iterator[tuple[str, bytes | None]]:
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
            if data[:4] in _ZIP_MAGIC:
                raise ApplicationError(
                    _("Zips inside a zip are not supported; upload them one by one."),
                    {"file": archive, "entry": info.filename},
                )
            yield info.filename, data


def _is_zip(item: UploadInput, head: bytes) -> bool:
    return item.name.lower().endswith(".zip") or head[:4] in _ZIP_MAGIC


def upload_parse(
    *,
    inputs: list[UploadInput],
    kind: str | None,
    progress: ProgressCallback | None = None,
) -> ParsedUpload:
    """Reads every input once and builds de-identified volumes (no database, no storage).

    Raises ``ApplicationError`` naming the offending ``file`` (and zip ``entry``).
    """
    secret = app_settings.UID_SECRET
    max_bytes = int(app_settings.ZIP_MAX_TOTAL_BYTES)
    max_ratio = float(app_settings.ZIP_MAX_RATIO)
    slices: list[DicomSlice] = []
    volumes: list[BuiltVolume] = []
    skipped: list[Skipped] = []

    def take_dicom(data: bytes, name: str) -> None:
        result = dicom_read(data, name=name)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            slices.extend(result)

    total = len(inputs)
    for index, item in enumerate(inputs):
        with item.opener() as fh:
            fh.seek(0)
            head = fh.read(4)
            fh.seek(0)
            if _is_zip(item, head):
                for entry, data in _zip_entries(fh, archive=item.name):
                    label = f"{item.name}/{entry}"
                    if data is None:
                        skipped.append(Skipped(label, _("Not an image file.")))
                    elif is_nifti_name(entry):
                        if not kind:
                            raise ApplicationError(
                                _("A NIfTI upload needs a 'kind' (DWI, ADC, FLAIR, CT or OTHER)."),
                                {"file": label, "field": "kind"},
                            )
                        volumes.append(
                            nifti_read(data, name=label, kind=kind, secret=secret,
                                       max_bytes=max_bytes, max_ratio=max_ratio)
                        )  # fmt: skip
                    else:
                        take_dicom(data, label)
            elif is_nifti_name(item.name):
                volumes.append(
                    nifti_read(fh.read(), name=item.name, kind=str(kind), secret=secret,
                               max_bytes=max_bytes, max_ratio=max_ratio)
                )  # fmt: skip
            else:
                take_dicom(fh.read(), item.name)
        if progress is not None:
            progress(0.9 * (index + 1) / total)
    if slices:
        built = dicom_volumes_build(slices, secret=secret)
        for volume in built:
            if kind and volume.kind == Series.Kind.OTHER:
                volume.kind = kind
        volumes = built + volumes
    if not volumes:
        raise ApplicationError(
            _("The upload holds no image this platform can use."),
            {"file": inputs[0].name, "skipped": [s.as_dict() for s in skipped[:50]]},
        )
    return ParsedUpload(volumes=volumes, skipped=skipped)


# --- storing ----------------------------------------------------------------------------------
def upload_store(*, user: User, case: Case, parsed: ParsedUpload) -> list[Series]:
    """Stores the parsed volumes as series of ``case`` in one all-or-nothing block.

    Precondition: ``user`` may change ``case`` (the caller checked with the selector).
    A series already present in the case (same re-mapped SeriesInstanceUID, or the same NIfTI
    content) is refused: a second upload of the same study must not duplicate it.
    """
    uids = [v.series_uid for v in parsed.volumes]
    seen: set[str] = set()
    for volume in parsed.volumes:
        if volume.series_uid in seen:
            raise ApplicationError(
                _("The same series is in the upload twice."), {"file": volume.files[0]}
            )
        seen.add(volume.series_uid)
    with storage.transactional():
        # Serialises concurrent uploads to one case, so the duplicate check below holds.
        Case.objects.select_for_update().filter(pk=case.pk).first()
        existing = set(
            Series.objects.filter(case=case, series_uid__in=uids).values_list(
                "series_uid", flat=True
            )
        )
        for volume in parsed.volumes:
            if volume.series_uid in existing:
                raise ApplicationError(
                    _("This series was already uploaded to the case."),
                    {"file": volume.files[0], "kind": volume.kind},
                )
        studies: dict[str, Study] = {}
        created: list[Series] = []
        for volume in parsed.volumes:
            study = None
            if volume.study_uid:
                study = studies.get(volume.study_uid)
                if study is None:
                    # No get_or_create (and its savepoint): the case row lock serialises us.
                    study = Study.objects.filter(case=case, study_uid=volume.study_uid).first()
                    if study is None:
                        study = Study.objects.create(
                            case=case,
                            study_uid=volume.study_uid,
                            description=volume.study_description[:200],
                        )
                    studies[volume.study_uid] = study
            created.append(
                series_create_from_array(
                    case=case,
                    kind=volume.kind,
                    array=volume.array,
                    spacing=volume.spacing,
                    affine=volume.affine,
                    source=Series.Source.DICOM if volume.source == "dicom" else Series.Source.NIFTI,
                    series_uid=volume.series_uid,
                    study=study,
                    description=volume.description,
                    header=volume.header,
                    quarantine_reason=volume.quarantine_reason,
                )
            )
        audit_record(
            actor=user,
            verb="series.uploaded",
            target=case,
            case=case,
            data={
                "series": [s.pk for s in created],
                "kinds": [s.kind for s in created],
                "quarantined": [s.pk for s in created if s.quarantined],
                "skipped": len(parsed.skipped),
            },
        )
    return created


def upload_ingest(
    *,
    user: User,
    case: Case,
    inputs: list[UploadInput],
    kind: str | None = None,
    progress: ProgressCallback | None = None,
) -> UploadResult:
    """Parses and stores an upload in this process; returns the new series and skip notes."""
    upload_limits_check(inputs=inputs, kind=kind)
    parsed = upload_parse(inputs=inputs, kind=kind or None, progress=progress)
    series = upload_store(user=user, case=case, parsed=parsed)
    return UploadResult(series=series, skipped=[s.as_dict() for s in parsed.skipped])


def upload_start(
    *,
    user: User,
    case: Case,
    inputs: list[UploadInput],
    kind: str | None = None,
) -> UploadResult | UploadJob:
    """Ingests a small upload now, or stages a large one and returns its queued job.

    Precondition: ``user`` may change ``case``.
    """
    upload_limits_check(inputs=inputs, kind=kind)
    total = sum(item.size for item in inputs)
    if total > app_settings.ASYNC_UPLOAD_BYTES:
        return upload_job_create(user=user, case=case, inputs=inputs, kind=kind)
    return upload_ingest(user=user, case=case, inputs=inputs, kind=kind)


# --- background jobs --------------------------------------------------------------------------
def upload_job_create(
    *,
    user: User,
    case: Case,
    inputs: list[UploadInput],
    kind: str | None = None,
) -> UploadJob:
    """Stages the raw files under one ``staging/`` prefix and queues the job after commit.

    A duplicate request (same user, case, file names and sizes while the first is still
    queued or running) returns the existing job instead of staging the files twice.
    """
    upload_limits_check(inputs=inputs, kind=kind)
    names = [item.name for item in inputs]
    total = sum(item.size for item in inputs)
    for job in UploadJob.objects.filter(
        case=case,
        created_by=user,
        total_bytes=total,
        status__in=[UploadJob.Status.QUEUED, UploadJob.Status.RUNNING],
    ):
        if job.file_names == names:
            return job
    prefix = storage.staging_key(name="upload").rsplit("/", 1)[0]
    with storage.transactional():
        for index, item in enumerate(inputs):
            with item.opener() as fh:
                fh.seek(0)
                storage.write_bytes(f"{prefix}/{index:05d}", cast(BinaryIO, fh))
        job = UploadJob.objects.create(
            case=case,
            created_by=user,
            status=UploadJob.Status.QUEUED,
            staging_key=prefix,
            kind=kind or "",
            file_names=names,
            total_bytes=total,
        )
        job_id = job.pk
        transaction.on_commit(lambda: _queue(job_id))
        job_event_send("upload", job_id, {"status": job.status, "progress": 0.0})
    return job


def _queue(job_id: int) -> None:
    from django_q.tasks import async_task

    async_task("cases.tasks.upload_job_run_task", job_id, task_name=f"upload-{job_id}")


def _staged_inputs(job: UploadJob) -> list[UploadInput]:
    def opener_for(key: str) -> Callable[[], AbstractContextManager[IO[bytes]]]:
        @contextmanager
        def _open() -> Iterator[IO[bytes]]:
            with storage.as_local_file(key) as path, open(path, "rb") as fh:
                yield fh

        return _open

    inputs = []
    for index, name in enumerate(job.file_names):
        key = f"{job.staging_key}/{index:05d}"
        inputs.append(UploadInput(name=name, size=storage.size(key), opener=opener_for(key)))
    return inputs


def _job_update(job: UploadJob, **fields: Any) -> None:
    UploadJob.objects.filter(pk=job.pk).update(**fields)
    for name, value in fields.items():
        setattr(job, name, value)


def upload_job_run(*, job_id: int) -> UploadJob:
    """Runs a queued upload job: parse with progress, store, record the outcome.

    Idempotent: a job that is no longer queued is left alone. The staged files are deleted
    whatever the outcome, and the original file names are dropped from the row once the job
    ends (names may carry original UIDs); a failure keeps the offending name in ``error``.
    """
    job = UploadJob.objects.select_related("case", "created_by").get(pk=job_id)
    claimed = UploadJob.objects.filter(pk=job_id, status=UploadJob.Status.QUEUED).update(
        status=UploadJob.Status.RUNNING, started_at=timezone.now(), progress=0.0
    )
    if not claimed:
        return job
    job.refresh_from_db()
    job_event_send("upload", job.pk, {"status": job.status, "progress": 0.0})
    last = [0.0]

    def progress(fraction: float) -> None:
        # Throttled: one row update and one event per 5 % is plenty for a progress bar.
        if fraction - last[0] >= 0.05 or fraction >= 0.9:
            last[0] = fraction
            _job_update(job, progress=round(fraction, 3))
            job_event_send("upload", job.pk, {"status": job.status, "progress": job.progress})

    try:
        inputs = _staged_inputs(job)
        parsed = upload_parse(inputs=inputs, kind=job.kind or None, progress=progress)
        with transaction.atomic():
            series = upload_store(user=job.created_by, case=job.case, parsed=parsed)
            job.series.set(series)
            _job_update(
                job,
                status=UploadJob.Status.DONE,
                progress=1.0,
                finished_at=timezone.now(),
                file_names=[],
                error=None,
            )
            job_event_send(
                "upload", job.pk,
                {"status": job.status, "progress": 1.0, "series": [s.pk for s in series]},
            )  # fmt: skip
    except ApplicationError as exc:
        _job_fail(job, {"message": exc.message, "extra": exc.extra, "status": exc.status_code})
    except Exception:
        logger.exception("upload job %s failed", job.pk)
        _job_fail(job, {"message": _("The upload could not be processed."), "extra": {}})
    finally:
        # Guarded: an empty prefix would name the whole store.
        if job.staging_key.startswith("staging/"):
            storage.delete_prefix(job.staging_key)
    return job


def _job_fail(job: UploadJob, error: dict[str, Any]) -> None:
    _job_update(
        job,
        status=UploadJob.Status.FAILED,
        finished_at=timezone.now(),
        file_names=[],
        error=error,
    )
    job_event_send("upload", job.pk, {"status": job.status, "error": error})
