"""DICOM export: de-identified source MR instances re-created from the stored volumes, and each
mask as a DICOM Segmentation (highdicom, BINARY, one segment per label present).

Layout per case: ``<case>/<KIND>/<slice:04d>.dcm`` (one single-frame MR instance per slice) and
``<case>/SEG/seg.dcm`` referencing the instances of the series the mask was drawn on.

* UIDs: the study, series and frame-of-reference UIDs stored at ingestion (already re-mapped
  by de-identification) are kept; per-slice SOP Instance UIDs and every UID the export needs
  beyond those are derived deterministically from the inputs
  (``pydicom.uid.generate_uid(entropy_srcs=...)``), so exporting twice gives the same bytes.
* Geometry: ImagePositionPatient / ImageOrientationPatient / PixelSpacing come from the
  series' affine (RAS -> DICOM LPS), the same geometry the NIfTI export and the viewer use;
  for DICOM-sourced series it equals the original positions.
* Pixel values: integers within int16 are stored as they are; real-valued volumes (ADC maps,
  rescaled data) as uint16 with RescaleSlope/Intercept (about 1/65535 of the range).
* No identifying data: patient name and id are the case's pseudonymous code, dates are a
  fixed placeholder (the stored series carry none), no institution or physician.
* Segment descriptions: category "Morphologically abnormal structure" (SCT 49755003), type
  "Infarct" (SCT 55641003), anatomic region "Brain" (SCT 12738006); the etiology is in the
  segment label; algorithm type MANUAL (drawn by annotators).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian, MRImageStorage

from cases.models import Series
from inference.services.arrays import load_series_array

from .base import ExportCase, Progress
from .manifest import ExportTree

#: Fixed placeholder date/time: de-identified series keep no acquisition dates.
FIXED_DATE = "20000101"
FIXED_TIME = "000000"
UID_PREFIX = "2.25."  # UUID-derived OIDs need no registered root
SOFTWARE = "Stroke AID export 1"

INFARCT = hd.sr.CodedConcept("55641003", "SCT", "Infarct")
CATEGORY = codes.SCT.MorphologicallyAbnormalStructure
BRAIN = codes.SCT.Brain
KINDS = ("DWI", "ADC", "FLAIR")


def det_uid(*parts: Any) -> str:
    """A deterministic UID from ``parts`` (stable across runs and processes).

    ``2.25.`` + a 128-bit integer from SHA-256 of the parts (the UUID-derived form of PS3.5
    B.2; pydicom's ``generate_uid(prefix=None)`` would ignore the entropy and be random).
    """
    digest = hashlib.sha256("\x1f".join(["strokeaid", *(str(p) for p in parts)]).encode())
    return UID_PREFIX + str(int.from_bytes(digest.digest()[:16], "big"))


def _lps(affine: Any) -> npt.NDArray[np.float64]:
    # Stored affines are RAS (NIfTI convention); DICOM patient coordinates are LPS.
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, dtype=np.float64)


def _ds(value: float) -> str:
    """A DS string (<= 16 characters) for ``value``."""
    text = f"{value:.10g}"
    return text if len(text) <= 16 else f"{value:.6g}"


def _pixels(array: npt.NDArray[Any]) -> tuple[npt.NDArray[Any], float, float, int]:
    """``(stored pixels, slope, intercept, pixel representation)`` of a volume."""
    lo = float(np.min(array)) if array.size else 0.0
    hi = float(np.max(array)) if array.size else 0.0
    integral = array.dtype.kind in "iub" or bool(np.array_equal(array, np.round(array)))
    if integral and lo >= -32768 and hi <= 32767:
        return np.asarray(array, dtype=np.int16), 1.0, 0.0, 1
    slope = float(_ds((hi - lo) / 65535.0)) if hi > lo else 1.0
    intercept = float(_ds(lo))
    stored = np.clip(np.rint((np.asarray(array, dtype=np.float64) - intercept) / slope), 0, 65535)
    return stored.astype(np.uint16), slope, intercept, 0


def series_uids(series: Series, case: ExportCase) -> dict[str, str]:
    header = series.header or {}
    study = header.get("StudyInstanceUID") or (
        series.study.study_uid if series.study_id and series.study else None
    )
    return {
        "study": str(study or det_uid("study", case.case_id)),
        "series": str(series.series_uid or det_uid("series", series.pk)),
        # NIfTI series of one case share scanner space (their affines are in one patient
        # frame), so they share one derived frame of reference.
        "frame": str(header.get("FrameOfReferenceUID") or det_uid("for", case.case_id)),
    }


def source_datasets(series: Series, case: ExportCase) -> list[Dataset]:
    """One de-identified single-frame MR instance per slice of ``series``."""
    array = np.asarray(load_series_array(series))
    nz, rows, cols = array.shape
    lps = _lps(series.affine)
    row_dir = lps[:3, 0] / np.linalg.norm(lps[:3, 0])  # along a row: increasing x (column)
    col_dir = lps[:3, 1] / np.linalg.norm(lps[:3, 1])  # down a column: increasing y (row)
    pixel_spacing = [_ds(float(np.linalg.norm(lps[:3, 1]))), _ds(float(np.linalg.norm(lps[:3, 0])))]
    thickness = _ds(float(np.linalg.norm(lps[:3, 2])))
    stored, slope, intercept, representation = _pixels(array)
    uids = series_uids(series, case)
    header = series.header or {}
    out = []
    for z in range(nz):
        sop_uid = det_uid("sop", uids["series"], z)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)  # pydicom converts a str the same way
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(det_uid("implementation"))
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = uids["study"]
        ds.SeriesInstanceUID = uids["series"]
        ds.FrameOfReferenceUID = uids["frame"]
        ds.PatientName = f"{case.code}^"  # one-component name: the trailing ^ says so
        ds.PatientID = case.code
        ds.PatientBirthDate = ""
        ds.PatientSex = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "Stroke AID: DICOM PS3.15 basic profile, re-created"
        ds.StudyDate = FIXED_DATE
        ds.StudyTime = FIXED_TIME
        ds.SeriesDate = FIXED_DATE
        ds.ContentDate = FIXED_DATE
        ds.ContentTime = FIXED_TIME
        ds.ReferringPhysicianName = ""
        ds.AccessionNumber = ""
        ds.StudyID = case.name[-16:]
        ds.Modality = "MR"
        ds.Manufacturer = str(header.get("Manufacturer", ""))[:64]
        ds.SeriesNumber = 1 + KINDS.index(series.kind) if series.kind in KINDS else 9
        ds.SeriesDescription = series.kind
        ds.InstanceNumber = z + 1
        # Value 3 of an MR image's type is from a defined list (PS3.3 C.8.3.1.1.1).
        ds.ImageType = [
            "DERIVED",
            "SECONDARY",
            "DIFFUSION MAP" if series.kind == "ADC" else "OTHER",
        ]
        ds.Laterality = ""  # type 2C: the brain is not a paired organ, so empty
        ds.PositionReferenceIndicator = ""  # type 2: no landmark is known for the grid
        ds.ScanningSequence = "RM"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = None  # type 2C (sequence not "EP"/"SK"): present, unknown
        ds.EchoTime = None
        ds.EchoTrainLength = None
        ds.PatientPosition = "HFS"
        ds.ImagePositionPatient = [_ds(float(v)) for v in (lps @ [0.0, 0.0, float(z), 1.0])[:3]]
        ds.ImageOrientationPatient = [_ds(float(v)) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = pixel_spacing
        ds.SliceThickness = thickness
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = rows
        ds.Columns = cols
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = representation
        ds.RescaleSlope = _ds(slope)
        ds.RescaleIntercept = _ds(intercept)
        ds.RescaleType = "US"
        ds.PixelData = (
            np.ascontiguousarray(stored[z]).astype(stored.dtype.newbyteorder("<")).tobytes()
        )
        out.append(ds)
    return out


def dicom_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def infarct_segments(
    labels: npt.NDArray[np.uint8],
    titles: dict[int, str],
    *,
    algorithm_type: hd.seg.SegmentAlgorithmTypeValues,
    algorithm: hd.AlgorithmIdentificationSequence | None = None,
    tracking: Callable[[int, str], tuple[str, str]] | None = None,
) -> tuple[npt.NDArray[np.uint8], list[hd.seg.SegmentDescription]] | None:
    """One "Infarct, <etiology>" segment per label value present in ``labels`` (the export's
    manual masks and the gateway's automatic results alike): the segment-numbered pixels and
    the descriptions, or None when ``labels`` is empty.

    Segment numbers must run 1..n while label values need not, so the pixels are relabelled
    through a lookup table. ``tracking(value, title)`` gives a segment's tracking UID and ID.
    """
    present = [int(v) for v in np.unique(labels) if v]
    if not present:
        return None
    lut = np.zeros(256, dtype=np.uint8)
    descriptions = []
    for number, value in enumerate(present, start=1):
        lut[value] = number
        title = titles.get(value, str(value))
        tracking_uid, tracking_id = tracking(value, title) if tracking else (None, None)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=f"Infarct, {title}"[:64],
                segmented_property_category=CATEGORY,
                segmented_property_type=INFARCT,
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm,
                tracking_uid=tracking_uid,
                tracking_id=tracking_id,
                anatomic_regions=[BRAIN],
            )
        )
    return lut[labels], descriptions


def segmentation(
    *,
    case: ExportCase,
    sources: list[Dataset],
    mask: npt.NDArray[np.uint8],
    label_names: dict[int, str],
) -> hd.seg.Segmentation | None:
    """The SEG of ``mask`` (on the sources' grid); None when the mask is empty."""
    segments = infarct_segments(
        mask,
        label_names,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        tracking=lambda value, name: (
            det_uid("tracking", case.revision_id, value),
            f"{case.name} {name}"[:64],
        ),
    )
    if segments is None:
        return None
    pixels, descriptions = segments
    series_uid = det_uid("seg-series", case.case_id, case.revision_id)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=series_uid,
        series_number=100,
        sop_instance_uid=det_uid("seg", case.case_id, case.revision_id),
        instance_number=1,
        manufacturer="Stroke AID",
        manufacturer_model_name="Stroke AID",
        software_versions=SOFTWARE,
        device_serial_number="0",
        content_description="Ischemic lesions labelled by etiology",
        content_label="LESIONS",
        content_creator_name=f"{case.annotator}^",
        omit_empty_frames=False,
    )
    # highdicom stamps the creation time and a random dimension organisation UID: pin both
    # so that the same mask always gives the same bytes.
    # highdicom's attributes are inferred as DA/TM; pydicom takes the DICOM strings as they are.
    seg.ContentDate = FIXED_DATE  # type: ignore[assignment]
    seg.ContentTime = FIXED_TIME  # type: ignore[assignment]
    for keyword in ("SeriesDate", "SeriesTime", "InstanceCreationDate", "InstanceCreationTime"):
        if keyword in seg:
            setattr(seg, keyword, FIXED_DATE if keyword.endswith("Date") else FIXED_TIME)
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = FIXED_DATE + FIXED_TIME
    org_uid = det_uid("dimension", case.case_id, case.revision_id)
    for item in seg.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = org_uid
    for item in seg.get("DimensionIndexSequence", []):
        item.DimensionOrganizationUID = org_uid
    return seg


def export_dicom_seg(
    *,
    cases: list[ExportCase],
    tree: ExportTree,
    label_names: dict[int, str],
    progress: Progress,
    notes: list[dict[str, Any]],
) -> dict[str, Any]:
    """Writes the source instances and SEG of every case into ``tree``."""
    segs = 0
    for index, case in enumerate(cases, start=1):
        mask_sources: list[Dataset] | None = None
        kinds = [k for k in KINDS if k in case.series]
        if case.mask_series.pk not in {s.pk for s in case.series.values()}:
            kinds.append(case.mask_series.kind)  # the annotated series is always included
        for kind in kinds:
            series = case.series.get(kind, case.mask_series)
            datasets = source_datasets(series, case)
            for z, ds in enumerate(datasets):
                tree.add(f"{case.name}/{kind}/{z + 1:04d}.dcm", dicom_bytes(ds))
            if series.pk == case.mask_series.pk:
                mask_sources = datasets
        assert mask_sources is not None
        seg = segmentation(
            case=case, sources=mask_sources, mask=case.mask(), label_names=label_names
        )
        if seg is None:
            notes.append({"case": case.name, "note": "empty mask: no SEG written"})
        else:
            tree.add(f"{case.name}/SEG/seg.dcm", dicom_bytes(seg))
            segs += 1
        progress(index / max(1, len(cases)))
    return {"segmentations": segs, "exported_cases": [c.name for c in cases]}
