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

Modules: ``inputs`` (files, limits, results), ``archive`` (safe zip reading), ``parsing``
(inputs to volumes), ``storing`` (volumes to series), ``jobs`` (the front door and the
background jobs).
"""

from .inputs import (
    ParsedUpload,
    ProgressCallback,
    UploadInput,
    UploadResult,
    upload_inputs_from_files,
    upload_limits_check,
)
from .jobs import upload_job_create, upload_job_run, upload_start
from .parsing import upload_parse
from .storing import upload_ingest, upload_store

__all__ = [
    "ParsedUpload",
    "ProgressCallback",
    "UploadInput",
    "UploadResult",
    "upload_ingest",
    "upload_inputs_from_files",
    "upload_job_create",
    "upload_job_run",
    "upload_limits_check",
    "upload_parse",
    "upload_start",
    "upload_store",
]
