"""Write phantom series as real DICOM MR Image Storage files (one file per slice) via pydicom.

Headers look like a Siemens stroke protocol (ep2d DWI trace, ADC map, dark-fluid FLAIR) and
carry fake but realistic-looking PHI, so de-identification and ingestion code meet what a
scanner export contains: PHI in standard tags, and optionally in nested sequences and a
private block; unsorted file names; signed / unsigned storage with rescale slope/intercept;
compressed transfer syntaxes. Geometry tags are consistent with :attr:`PhantomCase.affine`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom import dcmwrite
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
    generate_uid,
)

from .generator import PhantomCase

#: Private creator of the block that carries PHI copies when ``extra_phi=True``.
PRIVATE_CREATOR = "STROKEAID PHANTOM PHI"
PRIVATE_GROUP = 0x0029

_UNCOMPRESSED = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
_COMPRESSED = (RLELossless, JPEGLSLossless, JPEG2000Lossless)

# Fake identities: common surnames / given names, nothing derived from real records.
_SURNAMES = (
    "DOE", "ROE", "SMITH", "JOHNSON", "MILLER", "BROWN", "GARCIA", "MARTIN", "MUELLER",
    "IVANOV", "PETROV", "SOKOLOV", "KUZNETSOV", "NOVAK", "ROSSI", "LEROY", "HANSEN",
)  # fmt: skip
_GIVEN_F = ("JANE", "MARY", "ANNA", "OLGA", "ELENA", "MARIA", "SOFIA", "LINDA", "EVA", "IRINA")
_GIVEN_M = ("JOHN", "PETER", "IVAN", "DMITRY", "MICHAEL", "PAUL", "SERGEI", "THOMAS", "ALEX")
_INSTITUTIONS = (
    ("ST. ELSEWHERE GENERAL HOSPITAL", "12 Harbour Road^^Springfield^^40123^"),
    ("CITY CLINICAL HOSPITAL NO. 7", "45 Lenina Street^^Novosibirsk^^630000^"),
    ("RIVERSIDE STROKE CENTRE", "1 Riverside Drive^^Millbrook^^10101^"),
    ("MERCY UNIVERSITY MEDICAL CENTER", "800 College Ave^^Fairview^^55011^"),
)
_SCANNERS = (("MAGNETOM Skyra", 3.0, 123.2), ("MAGNETOM Aera", 1.5, 63.6))


@dataclass(frozen=True)
class _SeriesSpec:
    number: int
    description: str
    image_type: list[str]
    sequence_name: str
    scanning_sequence: str
    sequence_variant: str
    tr: float
    te: float
    ti: float | None
    flip: float
    signed: bool
    slope: float
    intercept: float
    window: tuple[float, float]


def _series_spec(kind: str) -> _SeriesSpec:
    if kind == "DWI":
        # Signed 16-bit with slope 0.5: exercises PixelRepresentation = 1 and rescale.
        return _SeriesSpec(
            5, "ep2d_diff_b1000_TRACE", ["DERIVED", "PRIMARY", "DIFFUSION", "TRACE"],
            "*ep_b1000t", "EP", "SK\\SP", 5400.0, 89.0, None, 90.0, True, 0.5, 0.0,
            (300.0, 600.0),
        )  # fmt: skip
    if kind == "ADC":
        # Non-trivial slope and intercept: stored = (ADC + 100) / 0.1.
        return _SeriesSpec(
            6, "ep2d_diff_b1000_ADC", ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"],
            "ep_b0_1000", "EP", "SK\\SP", 5400.0, 89.0, None, 90.0, False, 0.1, -100.0,
            (1200.0, 2400.0),
        )  # fmt: skip
    if kind == "FLAIR":
        return _SeriesSpec(
            7, "t2_tirm_tra_dark-fluid_FLAIR", ["ORIGINAL", "PRIMARY", "M", "NORM"],
            "*tir2d1_16", "SE\\IR", "SK\\SP\\MP", 9000.0, 81.0, 2500.0, 150.0, False, 1.0,
            0.0, (400.0, 800.0),
        )  # fmt: skip
    raise ValueError(f"unknown series kind {kind!r}")


def fake_phi(seed: int) -> dict[str, str]:
    """Deterministic fake PHI for a case seed (DICOM keyword -> value).

    Keys: PatientName, PatientID, PatientBirthDate, PatientSex, PatientAge, PatientAddress,
    InstitutionName, InstitutionAddress, ReferringPhysicianName, PerformingPhysicianName,
    OperatorsName, AccessionNumber, StudyID, StudyDate, StudyTime, StationName,
    DeviceSerialNumber, OtherPatientID, RequestingPhysician.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xD1C0]))
    sex = "F" if rng.random() < 0.5 else "M"
    given = _GIVEN_F if sex == "F" else _GIVEN_M

    def person(g: tuple[str, ...] = given) -> str:
        return f"{rng.choice(_SURNAMES)}^{rng.choice(g)}"

    def doctor() -> str:
        return f"{rng.choice(_SURNAMES)}^{rng.choice(_GIVEN_F + _GIVEN_M)}^^DR"

    study = dt.date(2022, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1100)))
    age = int(rng.integers(38, 92))
    birth = study - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    inst, addr = _INSTITUTIONS[int(rng.integers(len(_INSTITUTIONS)))]
    hh, mm, ss = int(rng.integers(0, 24)), int(rng.integers(0, 60)), int(rng.integers(0, 60))
    return {
        "PatientName": person(),
        "PatientID": f"MRN{int(rng.integers(10**6, 10**7))}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "PatientSex": sex,
        "PatientAge": f"{age:03d}Y",
        "PatientAddress": f"{int(rng.integers(1, 200))} Oak Street^^Springfield^^40100^",
        "InstitutionName": inst,
        "InstitutionAddress": addr,
        "ReferringPhysicianName": doctor(),
        "PerformingPhysicianName": doctor(),
        "OperatorsName": person(_GIVEN_F + _GIVEN_M),
        "AccessionNumber": f"A{int(rng.integers(10**8, 10**9))}",
        "StudyID": str(int(rng.integers(1000, 99999))),
        "StudyDate": study.strftime("%Y%m%d"),
        "StudyTime": f"{hh:02d}{mm:02d}{ss:02d}.000000",
        "StationName": f"MRC{int(rng.integers(10000, 99999))}",
        "DeviceSerialNumber": str(int(rng.integers(10000, 99999))),
        "OtherPatientID": f"INS-{int(rng.integers(10**5, 10**6))}",
        "RequestingPhysician": doctor(),
    }


def encoder_available(transfer_syntax: str) -> bool:
    """Whether ``transfer_syntax`` can be written here (pixel encoder plugins installed)."""
    ts = UID(transfer_syntax)
    if ts in _UNCOMPRESSED:
        return True
    if ts not in _COMPRESSED:
        return False
    try:
        from pydicom.pixels.encoders.base import get_encoder

        return bool(get_encoder(ts).is_available)
    except (ImportError, NotImplementedError, ValueError):
        return False


def supported_transfer_syntaxes() -> list[UID]:
    """Transfer syntaxes :func:`write_dicom_series` can write in this environment."""
    return [ts for ts in (*_UNCOMPRESSED, *_COMPRESSED) if encoder_available(ts)]


def series_uids(case: PhantomCase, kind: str) -> dict[str, str]:
    """Deterministic Study / Series / FrameOfReference UIDs of ``case`` (same case -> same UIDs).

    All three series share the study and the frame of reference: they are co-registered.
    """
    src = ["stroke-aid-phantom", case.code, str(case.seed)]
    return {
        "StudyInstanceUID": generate_uid(entropy_srcs=[*src, "study"]),
        "SeriesInstanceUID": generate_uid(entropy_srcs=[*src, "series", kind]),
        "FrameOfReferenceUID": generate_uid(entropy_srcs=[*src, "frame-of-reference"]),
    }


def _ds(v: float) -> str:
    """Format a number as a DICOM DS (<= 16 chars)."""
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return s if len(s) <= 16 else f"{v:.8g}"


def _quantise(vol: np.ndarray, spec: _SeriesSpec) -> np.ndarray:
    stored = np.rint((vol.astype(np.float64) - spec.intercept) / spec.slope)
    if spec.signed:
        return np.clip(stored, -32768, 32767).astype(np.int16)
    return np.clip(stored, 0, 65535).astype(np.uint16)


def write_dicom_series(
    case: PhantomCase,
    kind: str,
    out_dir: Path | str,
    *,
    transfer_syntax: str = ExplicitVRLittleEndian,
    phi: Mapping[str, str] | None = None,
    extra_phi: bool = False,
    shuffle_names: bool = True,
) -> list[Path]:
    """Write one series of ``case`` as DICOM files, one per slice.

    Args:
        case: the phantom case.
        kind: ``DWI``, ``ADC`` or ``FLAIR``.
        out_dir: directory (created if needed).
        transfer_syntax: any of :func:`supported_transfer_syntaxes` -- uncompressed
            explicit/implicit little endian, deflated, explicit big endian, RLE Lossless,
            JPEG-LS Lossless, JPEG 2000 Lossless. ``ValueError`` if its encoder is missing.
        phi: overrides of :func:`fake_phi` values (DICOM keyword -> value).
        extra_phi: also hide PHI in nested sequences (RequestAttributesSequence,
            ReferencedStudySequence, ProcedureCodeSequence, OtherPatientIDsSequence) and in a
            private block (creator :data:`PRIVATE_CREATOR`, group 0x0029) -- what
            de-identification must find.
        shuffle_names: name files by a hash of their SOPInstanceUID, so directory order says
            nothing about slice order (ingestion must sort by position); otherwise
            ``IM0001.dcm``... in InstanceNumber order.

    Returns:
        Paths of the written files in slice order (index 0 = most inferior slice, i.e.
        ``case.images[kind][0]``). InstanceNumber runs head -> feet (1 = most superior), as on
        some scanners, so sorting by InstanceNumber alone would flip the volume.
    """
    ts = UID(transfer_syntax)
    if not encoder_available(ts):
        raise ValueError(f"cannot write transfer syntax {ts.name} here (encoder missing)")
    spec = _series_spec(kind)
    vol = case.images[kind]
    nz, ny, nx = vol.shape
    dz, dy, dx = case.spacing
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = fake_phi(case.seed)
    if phi:
        p.update(phi)
    uids = series_uids(case, kind)
    src = ["stroke-aid-phantom", case.code, str(case.seed), kind]
    rng = np.random.default_rng(np.random.SeedSequence([case.seed, 0x5CA7]))
    model, field_t, freq = _SCANNERS[int(rng.integers(len(_SCANNERS)))]
    stored = _quantise(vol, spec)
    # Series start a few minutes apart within the study, like a real protocol.
    study_t = dt.datetime.strptime(p["StudyDate"] + p["StudyTime"][:6], "%Y%m%d%H%M%S")
    series_t = study_t + dt.timedelta(minutes=3 * spec.number)

    # Geometry: DICOM is LPS; the NIfTI affine is RAS. Voxel (i, j, k) -> RAS via affine;
    # LPS = diag(-1, -1, 1) RAS. Rows follow +y LPS (posterior), columns +x LPS (left).
    aff = case.affine
    lps = np.diag([-1.0, -1.0, 1.0])
    row_dir = lps @ aff[:3, 0] / np.linalg.norm(aff[:3, 0])  # along a row = increasing i
    col_dir = lps @ aff[:3, 1] / np.linalg.norm(aff[:3, 1])  # down a column = increasing j
    normal = np.cross(row_dir, col_dir)
    paths: list[Path] = []
    for k in range(nz):
        ipp = lps @ (aff[:3, :3] @ np.array([0.0, 0.0, float(k)]) + aff[:3, 3])
        instance = nz - k  # head -> feet numbering
        sop_uid = generate_uid(entropy_srcs=[*src, "sop", str(k)])

        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian if ts in _COMPRESSED else ts
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "STROKEAID_PH_1"
        ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)

        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = spec.image_type
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyDate = p["StudyDate"]
        ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = series_t.strftime("%Y%m%d")
        ds.StudyTime = p["StudyTime"]
        ds.SeriesTime = series_t.strftime("%H%M%S.000000")
        acq_t = series_t + dt.timedelta(seconds=2 * k)
        ds.AcquisitionTime = ds.ContentTime = acq_t.strftime("%H%M%S.%f")
        ds.AccessionNumber = p["AccessionNumber"]
        ds.Modality = "MR"
        ds.Manufacturer = "SIEMENS"
        ds.InstitutionName = p["InstitutionName"]
        ds.InstitutionAddress = p["InstitutionAddress"]
        ds.ReferringPhysicianName = p["ReferringPhysicianName"]
        ds.StationName = p["StationName"]
        ds.StudyDescription = "MRI HEAD^STROKE PROTOCOL"
        ds.SeriesDescription = spec.description
        ds.InstitutionalDepartmentName = "NEURORADIOLOGY"
        ds.PerformingPhysicianName = p["PerformingPhysicianName"]
        ds.OperatorsName = p["OperatorsName"]
        ds.ManufacturerModelName = model
        ds.PatientName = p["PatientName"]
        ds.PatientID = p["PatientID"]
        ds.IssuerOfPatientID = "HOSPITAL-MRN"
        ds.PatientBirthDate = p["PatientBirthDate"]
        ds.PatientSex = p["PatientSex"]
        ds.PatientAge = p["PatientAge"]
        ds.PatientAddress = p["PatientAddress"]
        ds.PatientWeight = _ds(float(rng.integers(50, 110)))
        ds.ScanningSequence = spec.scanning_sequence
        ds.SequenceVariant = spec.sequence_variant
        ds.ScanOptions = "PFP\\FS" if kind != "FLAIR" else "IR"
        ds.MRAcquisitionType = "2D"
        ds.SequenceName = spec.sequence_name
        ds.AngioFlag = "N"
        ds.SliceThickness = _ds(dz)
        ds.RepetitionTime = _ds(spec.tr)
        ds.EchoTime = _ds(spec.te)
        if spec.ti is not None:
            ds.InversionTime = _ds(spec.ti)
        ds.NumberOfAverages = "1"
        ds.ImagingFrequency = _ds(freq)
        ds.ImagedNucleus = "1H"
        ds.EchoNumbers = "1"
        ds.MagneticFieldStrength = _ds(field_t)
        ds.SpacingBetweenSlices = _ds(dz)
        ds.EchoTrainLength = "1" if kind != "FLAIR" else "16"
        ds.PercentSampling = "100"
        ds.PercentPhaseFieldOfView = "100"
        ds.PixelBandwidth = "1002" if kind != "FLAIR" else "260"
        ds.DeviceSerialNumber = p["DeviceSerialNumber"]
        ds.SoftwareVersions = "syngo MR E11"
        ds.ProtocolName = spec.description
        ds.AcquisitionMatrix = [0, ny, nx, 0]
        ds.InPlanePhaseEncodingDirection = "COL"
        ds.FlipAngle = _ds(spec.flip)
        ds.PatientPosition = "HFS"
        if kind == "DWI":
            ds.DiffusionBValue = float(case.meta.get("b_value", 1000.0))
            ds.DiffusionDirectionality = "ISOTROPIC"
        ds.StudyInstanceUID = uids["StudyInstanceUID"]
        ds.SeriesInstanceUID = uids["SeriesInstanceUID"]
        ds.StudyID = p["StudyID"]
        ds.SeriesNumber = str(spec.number)
        ds.AcquisitionNumber = "1"
        ds.InstanceNumber = str(instance)
        ds.ImagePositionPatient = [_ds(v) for v in ipp]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row_dir, *col_dir)]
        ds.FrameOfReferenceUID = uids["FrameOfReferenceUID"]
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = _ds(float(ipp @ normal))
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ny
        ds.Columns = nx
        # PixelSpacing = (row spacing = between rows = dy, column spacing = dx).
        ds.PixelSpacing = [_ds(dy), _ds(dx)]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if spec.signed else 0
        ds.WindowCenter = _ds(spec.window[0])
        ds.WindowWidth = _ds(spec.window[1])
        ds.RescaleIntercept = _ds(spec.intercept)
        ds.RescaleSlope = _ds(spec.slope)
        ds.RescaleType = "US"
        ds.LossyImageCompression = "00"
        if extra_phi:
            _add_extra_phi(ds, p, src)
        for keyword, value in (phi or {}).items():
            # Overrides of keywords the header does not set by default (e.g. EthnicGroup).
            if tag_for_keyword(keyword) is not None and keyword not in ds:
                setattr(ds, keyword, value)
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        ds["PixelData"].VR = "OW"

        if ts in _COMPRESSED:
            ds.compress(ts, generate_instance_uid=False)
        elif ts == ExplicitVRBigEndian:
            ds.PixelData = np.ascontiguousarray(stored[k]).byteswap().tobytes()
        name = (
            f"{hashlib.sha1(sop_uid.encode(), usedforsecurity=False).hexdigest()[:16]}.dcm"
            if shuffle_names
            else f"IM{instance:04d}.dcm"
        )
        path = out / name
        # The encoding follows file_meta.TransferSyntaxUID (deflate included).
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def _add_extra_phi(ds: Dataset, p: Mapping[str, str], src: list[str]) -> None:
    """Hide PHI where naive de-identification misses it: nested items and private tags."""
    other = Dataset()
    other.PatientID = p["OtherPatientID"]
    other.IssuerOfPatientID = "INSURANCE"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.OtherPatientNames = p["PatientName"].split("^")[0] + "^" + "J"

    req = Dataset()
    req.RequestedProcedureID = f"RP{p['AccessionNumber']}"
    req.ScheduledProcedureStepID = f"SPS{p['StudyID']}"
    req.RequestedProcedureDescription = "MRI BRAIN STROKE"
    req.RequestingPhysician = p["RequestingPhysician"]
    # Wild data: a PatientName inside a request item (not in the IOD, yet seen in practice).
    req.PatientName = p["PatientName"]
    req.AccessionNumber = p["AccessionNumber"]
    ds.RequestAttributesSequence = Sequence([req])

    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management
    ref.ReferencedSOPInstanceUID = generate_uid(entropy_srcs=[*src, "prior-study"])
    ref.PatientName = p["PatientName"]
    ref.PatientBirthDate = p["PatientBirthDate"]
    ds.ReferencedStudySequence = Sequence([ref])

    code = Dataset()
    code.CodeValue = "MRHEADSTR"
    code.CodingSchemeDesignator = "99LOCAL"
    code.CodeMeaning = f"MRI head stroke, ordered by {p['RequestingPhysician']}"
    ds.ProcedureCodeSequence = Sequence([code])
    ds.RequestingPhysician = p["RequestingPhysician"]
    ds.PatientComments = f"Pt {p['PatientName']} DOB {p['PatientBirthDate']}, wake-up stroke"

    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", p["PatientName"])
    block.add_new(0x02, "LO", p["PatientID"])
    block.add_new(0x03, "DA", p["PatientBirthDate"])
    block.add_new(0x04, "LO", p["InstitutionName"])
    block.add_new(0x05, "LT", f"Referred by {p['ReferringPhysicianName']}")


def read_back_volume(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read a written series back, ordered by position along the slice normal.

    A reference reader for tests and benchmarks (the product's ingestion lives elsewhere).

    Returns:
        (volume float64 (z, y, x) after rescale, IPP array (z, 3) in LPS mm).
    """
    from pydicom import dcmread
    from pydicom.pixels.processing import apply_rescale

    items = []
    for path in paths:
        ds = dcmread(path)
        iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
        arr = apply_rescale(ds.pixel_array, ds).astype(np.float64)
        items.append((float(ipp @ normal), ipp, arr))
    items.sort(key=lambda t: t[0])
    return np.stack([t[2] for t in items]), np.stack([t[1] for t in items])
