"""Results back to the PACS: a DICOM SEG of the predicted lesions and a DICOM SR (TID 1500
measurement report) that reference the study as the PACS knows it.

Cases hold only de-identified copies (re-mapped UIDs, no patient module). For studies the
gateway received, the original headers (no pixels) are kept in a *linkage*: encrypted with
``STROKEAID_GATEWAY_KEY`` (a Fernet key; derived from ``SECRET_KEY`` when unset), stored
beside the other files, read only by the listener's sending loop and deleted after
``STROKEAID_DICOM_LINKAGE_DAYS``. Nothing of it reaches exports, the REST API or the pages.

The SEG is built with highdicom on the original source instances: one segment per etiology
label present, "Infarct" with the etiology in the segment label, the algorithm named with the
model. The SR holds the lesion volume per label (each group referencing its SEG segment), the
total volume, the lesion count and the predicted etiology with its confidence. Both go to
every destination in ``STROKEAID_DICOM_DESTINATIONS``: ``AE@host:port`` by C-STORE, a
DICOMweb base URL by STOW-RS. A failed send is retried with back-off (destinations that hold
the results already are skipped) and shows on the PACS page and the case page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
import pydicom
from cryptography.fernet import Fernet
from django.conf import settings
from django.utils import timezone
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from cases import storage
from cases.dicom.deid import uid_remap
from cases.models import Label, Series
from gateway.models import DestinationStatus, ReceivedStudy
from inference.exports.formats.dicom_seg import INFARCT, infarct_segments
from strokeaid_site.conf import app_settings

#: Seconds before the n-th retry of a failed send (capped).
BACKOFF_SECONDS = (5, 15, 60, 300, 900)


@dataclass(frozen=True)
class Destination:
    """Where results go: a DICOM node (C-STORE) or a DICOMweb server (STOW-RS)."""

    name: str
    ae_title: str = ""
    host: str = ""
    port: int = 0
    url: str = ""


def destinations() -> list[Destination]:
    """``STROKEAID_DICOM_DESTINATIONS``, comma-separated: ``AE@host:port`` for a DICOM node,
    or the base URL of a DICOMweb service (``https://pacs.example/dicom-web``)."""
    out = []
    for entry in str(app_settings.DICOM_DESTINATIONS or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry.startswith(("http://", "https://")):
            out.append(Destination(name=entry, url=entry.rstrip("/")))
            continue
        ae, _, address = entry.partition("@")
        host, _, port = address.rpartition(":")
        out.append(Destination(name=entry, ae_title=ae.strip(), host=host.strip(), port=int(port)))
    return out


# --- the linkage -----------------------------------------------------------------------------
def _fernet() -> Fernet:
    key = str(app_settings.GATEWAY_KEY or "")
    if not key:
        digest = hashlib.sha256(b"strokeaid-gateway-linkage:" + settings.SECRET_KEY.encode())
        key = base64.urlsafe_b64encode(digest.digest()).decode()
    return Fernet(key.encode())


def linkage_store(*, study: ReceivedStudy, folder: Path) -> None:
    """Keeps the received instances' headers (no pixels), encrypted, until expiry."""
    headers: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        headers.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds.to_json_dict())
    token = _fernet().encrypt(json.dumps(headers).encode())
    key = f"gateway/linkage/{study.study_key}.bin"
    storage.write_bytes(key, token)
    days = float(app_settings.DICOM_LINKAGE_DAYS)
    ReceivedStudy.objects.filter(pk=study.pk).update(
        linkage_key=key, linkage_expires_at=timezone.now() + timedelta(days=days)
    )


def _linkage_read(study: ReceivedStudy) -> dict[str, list[Dataset]]:
    data = json.loads(_fernet().decrypt(storage.read_bytes(study.linkage_key)))
    return {uid: [Dataset.from_json(item) for item in items] for uid, items in data.items()}


def linkage_purge() -> int:
    """Deletes expired linkages (the results can no longer reach the PACS after that)."""
    expired = ReceivedStudy.objects.filter(linkage_expires_at__lte=timezone.now()).exclude(
        linkage_key=""
    )
    count = 0
    for study in expired:
        storage.delete(study.linkage_key)
        ReceivedStudy.objects.filter(pk=study.pk).update(linkage_key="", linkage_expires_at=None)
        count += 1
    return count


# --- the SEG ------------------------------------------------------------------------------------
def _sources_on_grid(
    originals: dict[str, list[Dataset]], reference: Series
) -> tuple[list[Dataset], list[int]]:
    """The original instances of the reference series and each one's slice index z."""
    secret = app_settings.UID_SECRET
    per_slice = list((reference.header.get("per_slice") or {}).get("SOPInstanceUID") or [])
    for series_uid, datasets in originals.items():
        if uid_remap(series_uid, secret=secret) != reference.series_uid.split("|")[0]:
            continue
        placed = []
        for ds in datasets:
            pseudo = uid_remap(str(ds.SOPInstanceUID), secret=secret)
            if pseudo in per_slice:
                placed.append((per_slice.index(pseudo), ds))
        placed.sort(key=lambda item: item[0])
        return [ds for _z, ds in placed], [z for z, _ds in placed]
    return [], []


def _new_object(*, series_number: int) -> dict[str, Any]:
    """The identity of a result object: a new series of one new instance, by Stroke AID."""
    return {
        "series_instance_uid": hd.UID(),
        "series_number": series_number,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": "Stroke AID",
    }


def segmentation_for(
    *,
    sources: list[Dataset],
    labels: npt.NDArray[np.uint8],
    titles: dict[int, str],
    model_name: str,
) -> hd.seg.Segmentation | None:
    """A SEG of ``labels`` (one frame per source, same order); None when nothing is found."""
    segments = infarct_segments(
        labels,
        titles,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm=hd.AlgorithmIdentificationSequence(
            name="Stroke AID",
            version=model_name[:64],
            family=codes.cid7162.ArtificialIntelligence,
        ),
    )
    if segments is None:
        return None
    pixels, descriptions = segments
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        **_new_object(series_number=9901),
        manufacturer_model_name="Stroke AID",
        software_versions=model_name[:64] or "Stroke AID",
        device_serial_number="0",
        content_description="Ischemic lesions by etiology (AI, not a diagnosis)",
        content_label="STROKEAID",
        omit_empty_frames=False,
    )


# --- the SR (TID 1500) ------------------------------------------------------------------------
#: Private codes (a "99" scheme, as PS3.16 allows) where no standard concept fits.
SCHEME = "99STROKEAID"
ETIOLOGY = hd.sr.CodedConcept("ETIOLOGY", SCHEME, "Ischemic stroke etiology (AI)")
LESION_COUNT = hd.sr.CodedConcept("LESIONS", SCHEME, "Number of ischemic lesions")
LESION_VOLUME = hd.sr.CodedConcept("LESIONVOL", SCHEME, "Total ischemic lesion volume")
CONFIDENCE = hd.sr.CodedConcept("CONFIDENCE", SCHEME, "Confidence of the etiology")
MILLILITER = hd.sr.CodedConcept("ml", "UCUM", "milliliter")
NO_UNITS = hd.sr.CodedConcept("1", "UCUM", "no units")


def _algorithm(model_name: str) -> hd.sr.AlgorithmIdentification:
    return hd.sr.AlgorithmIdentification(name="Stroke AID", version=model_name[:64] or "0")


def report_for(
    *,
    sources: list[Dataset],
    seg: hd.seg.Segmentation | None,
    labels: npt.NDArray[np.uint8],
    spacing: tuple[float, float, float],
    titles: dict[int, str],
    etiology: str | None,
    confidence: float | None,
    model_name: str,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 measurement report of a prediction on ``sources`` (the original instances).

    One volumetric group per etiology label present, referencing that label's segment of
    ``seg`` (its volume in ml), and one image-level group with the total lesion volume, the
    number of lesions (3-D connected components) and the predicted etiology as a coded
    finding (private codes, the label's name as meaning) with its confidence in percent.
    """
    from inference.ml.metrics import connected_components, voxel_volume_ml

    algorithm = _algorithm(model_name)
    voxel_ml = voxel_volume_ml(spacing)
    groups: list[Any] = []
    if seg is not None:
        for item in seg.SegmentSequence:
            value = next(v for v, t in titles.items() if item.SegmentLabel.endswith(f", {t}"))
            groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(
                        uid=hd.UID(), identifier=str(item.SegmentLabel)
                    ),
                    referenced_segment=hd.sr.ReferencedSegment(
                        sop_class_uid=str(seg.SOPClassUID),
                        sop_instance_uid=str(seg.SOPInstanceUID),
                        segment_number=int(item.SegmentNumber),
                        source_series=hd.sr.SourceSeriesForSegmentation(
                            str(sources[0].SeriesInstanceUID)
                        ),
                    ),
                    finding_type=INFARCT,
                    algorithm_id=algorithm,
                    measurements=[
                        hd.sr.Measurement(
                            name=codes.SCT.Volume,
                            value=round(int(np.count_nonzero(labels == value)) * voxel_ml, 4),
                            unit=MILLILITER,
                            algorithm_id=algorithm,
                        )
                    ],
                )
            )
    _components, count = connected_components(labels != 0)
    measurements = [
        hd.sr.Measurement(
            name=LESION_VOLUME,
            value=round(int(np.count_nonzero(labels)) * voxel_ml, 4),
            unit=MILLILITER,
            algorithm_id=algorithm,
        ),
        hd.sr.Measurement(name=LESION_COUNT, value=count, unit=NO_UNITS, algorithm_id=algorithm),
    ]
    evaluations = []
    if etiology:
        evaluations.append(
            hd.sr.QualitativeEvaluation(
                name=ETIOLOGY, value=hd.sr.CodedConcept(etiology.upper()[:16], SCHEME, etiology)
            )
        )
        if confidence is not None:
            measurements.append(
                hd.sr.Measurement(
                    name=CONFIDENCE,
                    value=round(100.0 * float(confidence), 1),
                    unit=codes.UCUM.Percent,
                    algorithm_id=algorithm,
                )
            )
    groups.append(
        hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="Case"),
            finding_type=codes.SCT.CerebrovascularAccidentOrStroke,
            algorithm_id=algorithm,
            measurements=measurements,
            qualitative_evaluations=evaluations or None,
        )
    )
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="Stroke AID", model_name=model_name[:64] or None
        ),
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.LN.BrainMRI,
        imaging_measurements=groups,
    )
    return hd.sr.Comprehensive3DSR(
        evidence=[*sources, *([seg] if seg is not None else [])],
        content=report,
        **_new_object(series_number=9902),
        series_description="Stroke AID report (AI, not a diagnosis)",
    )


def _store(objects: list[Dataset], destination: Destination) -> None:
    """Sends ``objects`` to one destination in one association (or one STOW-RS request)."""
    if destination.url:
        from dicomweb_client.api import DICOMwebClient

        client = DICOMwebClient(url=destination.url)
        client.set_http_retry_params(retry=False)
        client.store_instances(datasets=objects)
        return
    from pynetdicom import AE

    scu = AE(ae_title=str(app_settings.DICOM_AE_TITLE))
    for sop_class in {str(ds.SOPClassUID) for ds in objects}:
        scu.add_requested_context(sop_class)
    assoc = scu.associate(destination.host, destination.port, ae_title=destination.ae_title)
    if not assoc.is_established:
        raise ConnectionError(f"association with {destination.ae_title} refused or failed")
    try:
        for ds in objects:
            status = assoc.send_c_store(ds)
            if status is None or int(getattr(status, "Status", 0xFFFF)) != 0:
                raise ConnectionError(f"{destination.ae_title} answered the C-STORE with an error")
    finally:
        assoc.release()


def _note(destination: Destination, *, error: str = "", delivered: int = 0) -> None:
    now = timezone.now()
    status, _created = DestinationStatus.objects.get_or_create(name=destination.name[:255])
    status.last_attempt_at = now
    if error:
        status.last_error = error[:2000]
    else:
        status.last_ok_at, status.last_error = now, ""
        status.delivered += delivered
    status.save()


def results_due() -> list[ReceivedStudy]:
    """Predicted studies whose prediction is done and whose send is due."""
    from inference.models import JobStatus, PredictionJob

    if not destinations():
        return []  # nowhere to send: the study stays "prediction requested"
    now = timezone.now()
    due = []
    for study in ReceivedStudy.objects.filter(
        state=ReceivedStudy.State.PREDICTED, prediction_id__isnull=False
    ).exclude(linkage_key=""):
        if study.next_send_at and study.next_send_at > now:
            continue
        status = (
            PredictionJob.objects.filter(pk=int(study.prediction_id or 0))
            .values_list("status", flat=True)
            .first()
        )
        if status == JobStatus.DONE:
            due.append(study)
    return due


def results_for(study: ReceivedStudy) -> list[Dataset]:
    """The SEG (when a lesion was found) and the SR of ``study``'s done prediction, on the
    original instances of its reference series."""
    from inference.models import PredictionJob
    from inference.services.prediction import prediction_label_volume

    job = PredictionJob.objects.select_related("reference_series", "model", "etiology").get(
        pk=int(study.prediction_id or 0)
    )
    reference = job.reference_series
    if reference is None:
        raise ValueError("the prediction has no reference series")
    sources, zs = _sources_on_grid(_linkage_read(study), reference)
    if not sources:
        raise ValueError("the received instances of the reference series are not linked")
    volume = np.asarray(prediction_label_volume(job=job))
    labels = volume[zs]
    titles = {lab.value: lab.name for lab in Label.objects.filter(label_set=job.model.label_set)}
    seg = segmentation_for(sources=sources, labels=labels, titles=titles, model_name=job.model.name)
    spacing = tuple(float(v) for v in reference.spacing)
    report = report_for(
        sources=sources,
        seg=seg,
        labels=volume,
        spacing=(spacing[0], spacing[1], spacing[2]),
        titles=titles,
        etiology=job.etiology.name if job.etiology is not None else None,
        confidence=job.confidence,
        model_name=job.model.name,
    )
    return [*([seg] if seg is not None else []), report]


def study_results_send(*, study: ReceivedStudy) -> ReceivedStudy:
    """Builds the SEG and SR of the done prediction and sends them to every destination
    that does not hold them yet; a failure is retried with back-off."""
    delivered = set(study.delivered_to or [])
    errors = []
    try:
        objects = results_for(study)
    except Exception as exc:  # noqa: BLE001 - retried with back-off, the reason shown
        errors.append(f"{type(exc).__name__}: {exc}")
        objects = []
    for destination in destinations() if objects else []:
        if destination.name in delivered:
            continue
        try:
            _store(objects, destination)
        except Exception as exc:  # noqa: BLE001 - retried with back-off, the reason shown
            message = f"{destination.name}: {type(exc).__name__}: {exc}"
            errors.append(message)
            _note(destination, error=message)
        else:
            delivered.add(destination.name)
            _note(destination, delivered=len(objects))
    if errors:
        attempts = study.send_attempts + 1
        wait = BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1]
        ReceivedStudy.objects.filter(pk=study.pk).update(
            send_attempts=attempts,
            next_send_at=timezone.now() + timedelta(seconds=wait),
            delivered_to=sorted(delivered),
            error="; ".join(errors)[:2000],
        )
    else:
        ReceivedStudy.objects.filter(pk=study.pk).update(
            state=ReceivedStudy.State.SENT,
            sent_at=timezone.now(),
            delivered_to=sorted(delivered),
            error="",
        )
    study.refresh_from_db()
    return study
