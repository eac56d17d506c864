"""DICOMweb into the platform: STOW-RS requests (``POST /dicomweb/studies``) and studies
pulled from a PACS's DICOMweb service (QIDO-RS search, WADO-RS retrieve).

Both end in the gateway's spool and its one ingestion path (``study_ingest``): the same
de-identification, grouping and typing as every upload, the same "a study already received
makes no second case" rule.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from core.models import JobStatus
from gateway.models import PacsImport, ReceivedStudy
from gateway.services import instance_spool, study_ingest, study_key
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError, ConflictError

UID_PATTERN = re.compile(r"^[0-9]+(\.[0-9]+)*$")

#: Failure reasons of a STOW-RS response (PS3.18 table 10.5.3-2 / PS3.4 C-STORE statuses).
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
DOES_NOT_MATCH = 0xA900
#: The calling-AE column of studies that came by STOW-RS or were pulled by WADO-RS.
STOW_AE = "STOW-RS"
WADO_AE = "WADO-RS"


def multipart_parts(content_type: str, body: bytes) -> list[bytes]:
    """The ``application/dicom`` parts of a ``multipart/related`` body (the standard
    library's MIME parser; no hand-written one).

    Raises:
        ApplicationError: not ``multipart/related; type="application/dicom"``.
    """
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if message.get_content_type() != "multipart/related" or not message.is_multipart():
        raise ApplicationError("The body must be multipart/related.")
    declared = str(message.get_param("type", "application/dicom") or "application/dicom")
    if declared.lower() != "application/dicom":
        raise ApplicationError(
            'Only multipart/related; type="application/dicom" is accepted (no bulk data).'
        )
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            parts.append(payload)
    return parts


@dataclass
class StowResult:
    """The outcome of one STOW-RS request: what was stored, what failed and why."""

    stored: list[tuple[str, str]] = field(default_factory=list)  # (class, instance) UIDs
    failed: list[tuple[str, str, int]] = field(default_factory=list)
    studies: list[ReceivedStudy] = field(default_factory=list)

    @property
    def http_status(self) -> int:
        """200 all stored, 202 some failed, 409 none stored (PS3.18 10.5.3)."""
        if not self.failed:
            return 200
        return 202 if self.stored else 409

    def response(self) -> dict[str, Any]:
        """The PS3.18 response: a DICOM JSON dataset listing stored and failed instances."""
        ds = Dataset()
        if self.stored:
            ds.ReferencedSOPSequence = [_reference(cls, uid) for cls, uid in self.stored]
        if self.failed:
            items = []
            for cls, uid, reason in self.failed:
                item = _reference(cls, uid)
                item.FailureReason = reason
                items.append(item)
            ds.FailedSOPSequence = items
        return ds.to_json_dict()


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def stow_ingest(
    *, user: User, parts: list[bytes], study_uid: str | None = None, calling_ae: str = STOW_AE
) -> StowResult:
    """Spools each instance of a STOW-RS request and ingests each study it holds into a new
    case as ``user`` (a request is a whole study: it does not wait for a quiet period).

    An instance that is not DICOM, or of another study than ``study_uid`` (the request's
    URL), is listed as failed; a study whose ingestion fails lists all its instances as
    failed. Instances of a study already ingested are stored again as nothing new.
    """
    result = StowResult()
    accepted: dict[str, list[tuple[str, str]]] = {}
    for data in parts:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            sop_class, sop_uid = str(ds.SOPClassUID), str(ds.SOPInstanceUID)
            study = str(ds.StudyInstanceUID)
        except (InvalidDicomError, AttributeError, ValueError, TypeError, EOFError):
            result.failed.append(("", "", CANNOT_UNDERSTAND))
            continue
        if study_uid and study != study_uid:
            result.failed.append((sop_class, sop_uid, DOES_NOT_MATCH))
            continue
        instance_spool(data=data, study_uid=study, sop_uid=sop_uid, calling_ae=calling_ae)
        accepted.setdefault(study, []).append((sop_class, sop_uid))
    for study, instances in accepted.items():
        row = ReceivedStudy.objects.get(study_key=study_key(study))
        if row.state == ReceivedStudy.State.RECEIVING:
            row = study_ingest(
                study=row,
                autopredict=bool(app_settings.DICOM_AUTOPREDICT),
                user=user,
                via="dicomweb",
            )
        result.studies.append(row)
        if row.state == ReceivedStudy.State.FAILED:
            result.failed.extend((cls, uid, PROCESSING_FAILURE) for cls, uid in instances)
        else:
            result.stored.extend(instances)
    return result


# --- pulling from the PACS (QIDO-RS search, WADO-RS retrieve) -------------------------------
#: Search keys a user may give, and what each must look like.
SEARCH_KEYS = {
    "patient_id": ("PatientID", re.compile(r"^[^\\\\]{1,64}$")),
    "accession": ("AccessionNumber", re.compile(r"^[^\\\\]{1,16}$")),
    # A day, or a range open at either end (PS3.4 C.2.2.2.5): 20240101, 20240101-, -20240131.
    "date": ("StudyDate", re.compile(r"^(\d{8}(-(\d{8})?)?|-\d{8})$")),
    "modality": ("ModalitiesInStudy", re.compile(r"^[A-Z]{2,16}$")),
}
#: Attributes of a found study shown to the user (no patient name or birth date).
STUDY_FIELDS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedInstances",
    "PatientID",
)


def pacs_configured() -> bool:
    return bool(str(app_settings.DICOMWEB_URL or "").strip())


def pacs_client() -> DICOMwebClient:
    """A DICOMweb client of the PACS (``STROKEAID_DICOMWEB_URL``, optional basic auth
    ``STROKEAID_DICOMWEB_AUTH`` as ``user:password``).

    Raises:
        ConflictError: no PACS is configured.
    """
    url = str(app_settings.DICOMWEB_URL or "").strip()
    if not url:
        raise ConflictError(
            _("No PACS DICOMweb service is configured (STROKEAID_DICOMWEB_URL)."), {}
        )
    session = None
    auth = str(app_settings.DICOMWEB_AUTH or "")
    if auth:
        from dicomweb_client.session_utils import create_session_from_user_pass

        name, _sep, password = auth.partition(":")
        session = create_session_from_user_pass(name, password)
    client = DICOMwebClient(url=url.rstrip("/"), session=session)
    client.set_http_retry_params(retry=False)
    return client


def _first(item: dict[str, Any], keyword: str) -> Any:
    from pydicom.datadict import tag_for_keyword

    tag = f"{tag_for_keyword(keyword):08X}"
    values = (item.get(tag) or {}).get("Value") or []
    if keyword == "ModalitiesInStudy":
        return [str(v) for v in values]
    return values[0] if values else None


def pacs_search(*, filters: dict[str, str], limit: int = 50) -> list[dict[str, Any]]:
    """Studies on the PACS matching ``filters`` (``patient_id``, ``accession``, ``date``
    as ``YYYYMMDD`` or a ``YYYYMMDD-YYYYMMDD`` range, ``modality``), newest first.

    Raises:
        ApplicationError: no search key, or one that is malformed; the PACS cannot be
        reached.
    """
    search: dict[str, str] = {}
    for key, value in filters.items():
        value = str(value or "").strip()
        if not value:
            continue
        if key not in SEARCH_KEYS:
            raise ApplicationError(_("Unknown search key."), {"key": key})
        keyword, pattern = SEARCH_KEYS[key]
        if not pattern.match(value):
            raise ApplicationError(_("This search value is not valid."), {"key": key})
        search[keyword] = value
    if not search:
        raise ApplicationError(
            _("Give a patient ID, an accession number, a date or a modality."), {}
        )
    try:
        found = pacs_client().search_for_studies(
            search_filters=search, fields=list(STUDY_FIELDS), limit=limit
        )
    except requests.RequestException as exc:
        raise ConflictError(
            _("The PACS could not be searched."), {"reason": type(exc).__name__}
        ) from exc
    rows = [{keyword: _first(item, keyword) for keyword in STUDY_FIELDS} for item in found]
    rows.sort(key=lambda r: str(r["StudyDate"] or ""), reverse=True)
    return rows


def pacs_import_request(*, user: User, study_uid: str) -> tuple[PacsImport, bool]:
    """Queues the retrieval of ``study_uid`` from the PACS into a new case (one active
    import per study; a study already received makes no second case).

    Raises:
        ApplicationError: not a UID; ConflictError: no PACS is configured.
    """
    from core.jobs import job_request, jobs_reap_stale
    from gateway.results import _fernet

    study_uid = str(study_uid or "").strip()
    if not UID_PATTERN.match(study_uid):
        raise ApplicationError(_("This is not a Study Instance UID."), {"field": "study_uid"})
    pacs_client()  # configured?
    # An import whose worker died must not answer this request in its place.
    jobs_reap_stale(model=PacsImport, message=_("The worker stopped before the import finished."))
    target = f"pacs:{study_key(study_uid)[:40]}"

    def create() -> PacsImport:
        return PacsImport.objects.create(
            target=target,
            created_by=user,
            study_token=_fernet().encrypt(study_uid.encode()).decode(),
        )

    return job_request(
        model=PacsImport,
        target=target,
        create=create,
        task="gateway.tasks.pacs_import_execute",
        group="pacs-import",
    )


def pacs_import_execute(*, job_id: int) -> PacsImport:
    """Retrieves the study (WADO-RS) into the spool, instance by instance with progress, and
    ingests it as the requesting user. The study's UID is wiped from the job when it ends."""
    from core.jobs import job_heartbeat
    from gateway.results import _fernet

    claimed = PacsImport.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    job = PacsImport.objects.select_related("created_by").get(pk=job_id)
    if not claimed:
        return job
    try:
        with job_heartbeat(model=PacsImport, job_id=job_id):
            study_uid = _fernet().decrypt(job.study_token.encode()).decode()
            client = pacs_client()
            try:
                (found,) = client.search_for_studies(
                    search_filters={"StudyInstanceUID": study_uid},
                    fields=["NumberOfStudyRelatedInstances"],
                ) or [{}]
            except ValueError:
                found = {}
            expected = int(_first(found, "NumberOfStudyRelatedInstances") or 0)
            PacsImport.objects.filter(pk=job_id).update(expected=expected)
            count = 0
            for ds in client.iter_study(study_uid):
                buffer = io.BytesIO()
                ds.save_as(buffer, enforce_file_format=True)
                instance_spool(
                    data=buffer.getvalue(),
                    study_uid=study_uid,
                    sop_uid=str(ds.SOPInstanceUID),
                    calling_ae=WADO_AE,
                )
                count += 1
                PacsImport.objects.filter(pk=job_id).update(
                    retrieved=count,
                    progress=min(0.9, 0.9 * count / expected) if expected else 0.5,
                )
            if not count:
                raise ApplicationError(_("The PACS returned no instance of this study."), {})
            row = ReceivedStudy.objects.get(study_key=study_key(study_uid))
            if row.state == ReceivedStudy.State.RECEIVING:
                row = study_ingest(
                    study=row,
                    autopredict=bool(app_settings.DICOM_AUTOPREDICT),
                    user=job.created_by,
                    via="wado-rs",
                )
            if row.state == ReceivedStudy.State.FAILED:
                raise ApplicationError(row.error or _("The study could not be ingested."), {})
        PacsImport.objects.filter(pk=job_id).update(
            status=JobStatus.DONE,
            progress=1.0,
            received=row,
            finished_at=timezone.now(),
            study_token="",
        )
    except Exception as exc:  # noqa: BLE001 - the job is marked failed with the reason
        message = exc.message if isinstance(exc, ApplicationError) else type(exc).__name__
        PacsImport.objects.filter(pk=job_id).update(
            status=JobStatus.FAILED,
            error=str(message)[:2000],
            finished_at=timezone.now(),
            study_token="",
        )
    job.refresh_from_db()
    return job
