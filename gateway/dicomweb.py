"""DICOMweb into the platform: STOW-RS requests (``POST /dicomweb/studies``) and studies
pulled from a PACS's DICOMweb service (QIDO-RS search, WADO-RS retrieve).

Both end in the gateway's spool and its one ingestion path (``study_ingest``): the same
de-identification, grouping and typing as every upload, the same "a study already received
makes no second case" rule.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from typing import Any

import pydicom
from django.contrib.auth.models import User
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from gateway.models import ReceivedStudy
from gateway.services import instance_spool, study_ingest, study_key
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError

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
