"""Ingestion services: grouping, slice order, geometry, kind detection, rescale, codecs, NIfTI."""

from __future__ import annotations

import io
import random
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from cases import storage
from cases.dicom import (
    b_value_of,
    dicom_read,
    dicom_volumes_build,
    series_kind_detect,
)
from cases.models import Series, Volume
from cases.phantoms import encoder_available, write_nifti
from cases.services.nifti_io import nifti_read
from cases.services.upload import upload_ingest, upload_inputs_from_files
from strokeaid_site.errors import ApplicationError
from tests.cases.upload_fixtures import mr_dataset, phantom, series_files, uploaded, uploads_of
from tests.factories import CaseFactory

SECRET = "test-secret"
NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"


def build(files: list[tuple[str, bytes]]) -> list:
    slices = []
    for name, data in files:
        result = dicom_read(data, name=name)
        assert isinstance(result, list), result
        slices.extend(result)
    return dicom_volumes_build(slices, secret=SECRET)


def expected_volume(paths: list[Path]) -> tuple[np.ndarray, list[Path]]:
    """Reference: pydicom + rescale, sorted by IPP along the normal (independent code)."""
    items = []
    for path in paths:
        ds = pydicom.dcmread(path)
        iop = np.array(ds.ImageOrientationPatient, dtype=float)
        normal = np.cross(iop[:3], iop[3:])
        pos = float(np.dot(np.array(ds.ImagePositionPatient, dtype=float), normal))
        pixels = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1)) + float(
            ds.get("RescaleIntercept", 0)
        )
        items.append((pos, pixels, path))
    items.sort(key=lambda t: t[0])
    return np.stack([p for _pos, p, _ in items]), [path for *_, path in items]


# --- grouping, order, geometry ---------------------------------------------------------------
def test_groups_series_and_detects_kinds() -> None:
    files = series_files("DWI") + series_files("ADC") + series_files("FLAIR")
    random.Random(1).shuffle(files)
    volumes = build([(p.name, p.read_bytes()) for p in files])
    assert sorted(v.kind for v in volumes) == ["ADC", "DWI", "FLAIR"]
    assert all(v.array.shape == phantom().images["DWI"].shape for v in volumes)
    # One study, one frame of reference: the three series are co-registered.
    assert len({v.study_uid for v in volumes}) == 1
    assert len({v.header["FrameOfReferenceUID"] for v in volumes}) == 1


def test_slices_are_ordered_by_position_not_name_or_instance_number() -> None:
    files = series_files("DWI")  # hashed names; InstanceNumber runs head -> feet
    instance = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in files]
    expected, ordered = expected_volume(files)
    assert [int(pydicom.dcmread(p).InstanceNumber) for p in ordered] != sorted(instance)
    for seed in range(3):
        shuffled = files[:]
        random.Random(seed).shuffle(shuffled)
        (volume,) = build([(p.name, p.read_bytes()) for p in shuffled])
        np.testing.assert_allclose(volume.array, expected, rtol=0, atol=1e-3)
        positions = np.array(volume.header["per_slice"]["ImagePositionPatient"])
        assert np.all(np.diff(positions[:, 2]) > 0)


def test_affine_and_spacing_match_the_phantom_and_nibabel(tmp_path: Path) -> None:
    case = phantom()
    (volume,) = build([(p.name, p.read_bytes()) for p in series_files("FLAIR")])
    np.testing.assert_allclose(volume.affine, case.affine, atol=1e-3)
    np.testing.assert_allclose(volume.spacing, case.spacing, rtol=1e-5)
    # The NIfTI of the same series (nibabel's convention) gives the same grid.
    path = write_nifti(case, "FLAIR", tmp_path / "flair.nii.gz")
    from_nifti = nifti_read(
        path.read_bytes(), name="flair.nii.gz", kind="FLAIR", secret=SECRET,
        max_bytes=10**9, max_ratio=1000,
    )  # fmt: skip
    np.testing.assert_allclose(from_nifti.affine, volume.affine, atol=1e-3)
    np.testing.assert_allclose(from_nifti.spacing, volume.spacing, rtol=1e-5)
    assert from_nifti.array.shape == volume.array.shape
    # Voxel (x, y, z) -> RAS through the affine is the DICOM IPP of that slice (LPS flipped).
    z = 3
    ipp = np.array(volume.header["per_slice"]["ImagePositionPatient"][z])
    ras = volume.affine @ np.array([0, 0, z, 1.0])
    np.testing.assert_allclose(ras[:3], ipp * [-1, -1, 1], atol=1e-3)


def test_oblique_geometry_and_reverse_file_order() -> None:
    angle = np.deg2rad(20)
    row = np.array([1.0, 0.0, 0.0])
    col = np.array([0.0, np.cos(angle), -np.sin(angle)])
    normal = np.cross(row, col)
    origin = np.array([-100.0, -80.0, 30.0])
    files = []
    for k in range(5):
        ipp = origin + normal * 4.0 * k
        data = mr_dataset(ipp=tuple(ipp), iop=(*row, *col), instance=k, spacing=(0.9, 0.8))
        files.append((f"IM{9 - k}.dcm", data))  # names and order reversed
    (volume,) = build(files[::-1])
    assert volume.array.shape == (5, 6, 5)
    assert [int(volume.array[k, 0, 0]) for k in range(5)] == [0, 1, 2, 3, 4]
    assert volume.spacing == pytest.approx((4.0, 0.9, 0.8))
    lps = np.eye(4)
    lps[:3, 0] = row * 0.8  # columns (x) step along the row direction by column spacing
    lps[:3, 1] = col * 0.9
    lps[:3, 2] = normal * 4.0
    lps[:3, 3] = origin
    np.testing.assert_allclose(volume.affine, np.diag([-1, -1, 1, 1]) @ lps, atol=1e-6)


def test_uneven_spacing_mixed_shapes_and_orientations_are_refused() -> None:
    base = [(f"{k}.dcm", mr_dataset(ipp=(0, 0, 5.0 * k), instance=k)) for k in (0, 1, 2, 4)]
    with pytest.raises(ApplicationError) as err:
        build(base)
    assert "evenly" in err.value.message and err.value.extra["file"] == "4.dcm"
    big = mr_dataset(ipp=(0, 0, 15.0), pixels=np.zeros((7, 5), np.uint16))
    with pytest.raises(ApplicationError) as err:
        build([*base[:3], ("big.dcm", big)])
    assert err.value.extra["file"] == "big.dcm"
    tilted = mr_dataset(ipp=(0, 0, 15.0), iop=(1, 0, 0, 0, 0, 1))
    with pytest.raises(ApplicationError) as err:
        build([*base[:3], ("tilted.dcm", tilted)])
    assert err.value.extra["file"] == "tilted.dcm"


def test_rescale_slope_intercept_per_slice() -> None:
    files = []
    for k in range(3):
        files.append(
            (
                f"{k}.dcm",
                mr_dataset(ipp=(0, 0, 2.0 * k), instance=k, RescaleSlope=str(0.5 * (k + 1)),
                           RescaleIntercept="-10"),
            )
        )  # fmt: skip
    (volume,) = build(files)
    assert volume.array.dtype == np.float32
    raw = np.arange(30, dtype=np.float64).reshape(6, 5)
    for k in range(3):
        np.testing.assert_allclose(volume.array[k], (raw + k) * 0.5 * (k + 1) - 10)
    # Integer intercepts keep integers (CT Hounsfield units).
    ct = [
        (f"{k}.dcm", mr_dataset(ipp=(0, 0, k), instance=k, RescaleSlope="1",
                                RescaleIntercept="-1024", Modality="CT"))
        for k in range(2)
    ]  # fmt: skip
    (ct_volume,) = build(ct)
    assert ct_volume.kind == "CT"
    assert ct_volume.array.dtype == np.int16
    assert int(ct_volume.array[0, 0, 0]) == -1024


def test_same_position_split_by_b_value() -> None:
    files = []
    for b in (0, 1000):
        for k in range(3):
            files.append(
                (f"b{b}-{k}.dcm",
                 mr_dataset(ipp=(0, 0, 3.0 * k), instance=k + b, DiffusionBValue=b,
                            SeriesDescription="ep2d_diff_3scan_trace"))
            )  # fmt: skip
    volumes = build(files)
    assert [(v.kind, v.header["DiffusionBValue"]) for v in volumes] == [
        ("DWI", 1000.0),
        ("OTHER", 0.0),
    ]
    assert volumes[0].series_uid != volumes[1].series_uid
    # Same position twice without any b-value to tell them apart: refused.
    dup = [(f"{k}.dcm", mr_dataset(ipp=(0, 0, 0), instance=k)) for k in range(2)]
    with pytest.raises(ApplicationError, match="same position"):
        build(dup)


# --- kind detection -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("hints", "kind"),
    [
        ({"modality": "CT"}, "CT"),
        ({"modality": "MR", "image_type": ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]}, "ADC"),
        ({"modality": "MR", "description": "Apparent Diffusion Coefficient (mm2/s)"}, "ADC"),
        ({"modality": "MR", "description": "dADC_sense"}, "ADC"),
        ({"modality": "MR", "description": "ep2d_diff_3scan_trace_p2_ADC"}, "ADC"),
        ({"modality": "MR", "description": "eADC"}, "OTHER"),
        ({"modality": "MR", "image_type": ["DERIVED", "PRIMARY", "DIFFUSION", "TRACEW"]}, "DWI"),
        ({"modality": "MR", "description": "AX DWI 1000b"}, "DWI"),
        ({"modality": "MR", "description": "series 5", "b_values": {0.0, 1000.0}}, "DWI"),
        ({"modality": "MR", "description": "Ax T2 FLAIR"}, "FLAIR"),
        ({"modality": "MR", "description": "t2_tirm_tra_dark-fluid"}, "FLAIR"),
        (
            {"modality": "MR", "description": "ax 3", "scanning_sequence": "SE\\IR",
             "inversion_time": "2500", "echo_time": "90"},
            "FLAIR",
        ),
        (
            {"modality": "MR", "description": "t1 ir", "scanning_sequence": "IR",
             "inversion_time": "800", "echo_time": "10"},
            "OTHER",
        ),
        ({"modality": "MR", "description": "t1_mprage"}, "OTHER"),
        ({"modality": "US"}, "OTHER"),
    ],
)  # fmt: skip
def test_series_kind_detect(hints: dict, kind: str) -> None:
    assert series_kind_detect(hints) == kind


def test_b_value_from_standard_and_vendor_tags() -> None:
    ds = Dataset()
    ds.DiffusionBValue = 800
    assert b_value_of(ds) == 800
    siemens = Dataset()
    siemens.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0C, "IS", "1000")
    assert b_value_of(siemens) == 1000
    ge = Dataset()
    ge.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(
        0x39, "IS", ["1000001000", "8", "0", "0"]
    )
    assert b_value_of(ge) == 1000
    philips = Dataset()
    philips.private_block(0x2001, "Philips Imaging DD 001", create=True).add_new(0x03, "FL", 1000.0)
    assert b_value_of(philips) == 1000
    name = Dataset()
    name.SequenceName = "*ep_b1000t"
    assert b_value_of(name) == 1000
    assert b_value_of(Dataset()) is None


# --- codecs -------------------------------------------------------------------------------
_MR_SMALL_VARIANTS = [
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_expb.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
]


@pytest.mark.parametrize("name", _MR_SMALL_VARIANTS)
def test_pydicom_compressed_variants_give_identical_voxels(name: str) -> None:
    reference_path = get_testdata_file("MR_small.dcm", download=False)
    path = get_testdata_file(name, download=False)
    if path is None or reference_path is None:
        pytest.skip(f"{name} is not shipped with this pydicom (offline only)")
    (reference,) = build([("MR_small.dcm", Path(reference_path).read_bytes())])
    (volume,) = build([(name, Path(path).read_bytes())])
    assert volume.array.dtype.isnative
    np.testing.assert_array_equal(volume.array, reference.array)
    np.testing.assert_allclose(volume.affine, reference.affine)


@pytest.mark.parametrize(
    "syntax",
    [ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless, JPEGLSLossless, JPEG2000Lossless],
)
def test_phantom_series_in_every_transfer_syntax_gives_identical_voxels(syntax: str) -> None:
    if not encoder_available(syntax):
        pytest.skip(f"no encoder for {syntax} in this environment")
    (reference,) = build([(p.name, p.read_bytes()) for p in series_files("DWI")])
    (volume,) = build(
        [(p.name, p.read_bytes()) for p in series_files("DWI", transfer_syntax=syntax)]
    )
    np.testing.assert_array_equal(volume.array, reference.array)
    assert volume.header["TransferSyntaxUID"] == str(syntax)


def test_enhanced_multiframe_mr_uses_per_frame_geometry() -> None:
    frames = 4
    order = [2, 0, 3, 1]  # frames stored out of spatial order
    pixels = np.stack([np.full((6, 5), 10 * k, np.uint16) for k in order])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "MR"
    ds.SeriesDescription = "Ax FLAIR"
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = 6, 5
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit, ds.PixelRepresentation = 15, 0
    shared = Dataset()
    orient, measures = Dataset(), Dataset()
    orient.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = 3
    shared.PlaneOrientationSequence = Sequence([orient])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per_frame = []
    for k in order:
        item, plane = Dataset(), Dataset()
        plane.ImagePositionPatient = [0, 0, 3.0 * k]
        item.PlanePositionSequence = Sequence([plane])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    (volume,) = build([("enhanced.dcm", buf.getvalue())])
    assert volume.kind == "FLAIR"
    assert volume.array.shape == (4, 6, 5)
    assert [int(volume.array[k, 0, 0]) for k in range(4)] == [0, 10, 20, 30]
    assert volume.spacing == pytest.approx((3.0, 0.5, 0.5))
    assert volume.header["per_slice"]["frame"] == [2, 4, 1, 3]


# --- NIfTI --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["anatomical.nii", "standard.nii.gz"])
def test_nibabel_sample_files_ingest_with_geometry(name: str) -> None:
    path = NIBABEL_DATA / name
    if not path.exists():
        pytest.skip(f"nibabel does not ship {name} here")
    image = nib.load(path)
    volume = nifti_read(
        path.read_bytes(), name=name, kind="FLAIR", secret=SECRET, max_bytes=10**9,
        max_ratio=1000,
    )  # fmt: skip
    data = np.asanyarray(image.dataobj)
    data = data[..., 0] if data.ndim == 4 else data
    np.testing.assert_array_equal(volume.array, data.transpose(2, 1, 0))
    np.testing.assert_allclose(volume.affine, image.affine)
    assert volume.spacing == pytest.approx(tuple(image.header.get_zooms()[:3][::-1]))
    assert set(volume.header) <= {
        "source", "format", "datatype", "qform_code", "sform_code", "xyzt_units", "stored_dtype",
    }  # fmt: skip


def test_nifti_4d_with_several_volumes_is_refused() -> None:
    path = NIBABEL_DATA / "example4d.nii.gz"
    if not path.exists():
        pytest.skip("nibabel does not ship example4d.nii.gz here")
    with pytest.raises(ApplicationError, match="3-D"):
        nifti_read(
            path.read_bytes(), name="example4d.nii.gz", kind="DWI", secret=SECRET,
            max_bytes=10**9, max_ratio=1000,
        )  # fmt: skip


def test_nifti_gzip_bomb_is_refused() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(ApplicationError, match="expands"):
        nifti_read(bomb, name="bomb.nii.gz", kind="DWI", secret=SECRET, max_bytes=10**9,
                   max_ratio=100)  # fmt: skip


# --- storing ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_ingest_stores_one_npy_per_series_and_no_slice_rows(neurologist) -> None:
    case = CaseFactory(created_by=neurologist)
    files = series_files("DWI") + series_files("ADC")
    result = upload_ingest(
        user=neurologist, case=case, inputs=upload_inputs_from_files(uploads_of(files))
    )
    assert len(result.series) == 2
    assert Volume.objects.filter(series__case=case).count() == 2
    for series in result.series:
        array = storage.read_array(series.volume.key)
        assert list(array.shape) == series.shape
        assert series.source == Series.Source.DICOM
        assert series.study is not None
        assert len(series.header["per_slice"]["SOPInstanceUID"]) == series.shape[0]
    dwi = next(s for s in result.series if s.kind == "DWI")
    expected, _ = expected_volume(series_files("DWI"))
    np.testing.assert_allclose(storage.read_array(dwi.volume.key), expected, atol=1e-3)
    case.refresh_from_db()
    assert case.status == "imaged"


@pytest.mark.django_db
def test_dicom_kind_field_only_fills_unknown_kinds(neurologist) -> None:
    case = CaseFactory(created_by=neurologist)
    other = [(f"{k}.dcm", mr_dataset(ipp=(0, 0, k), instance=k, SeriesDescription="x"))
             for k in range(2)]  # fmt: skip
    files = [uploaded(n, d) for n, d in other] + uploads_of(series_files("ADC"))
    result = upload_ingest(
        user=neurologist, case=case, inputs=upload_inputs_from_files(files), kind="FLAIR"
    )
    assert sorted(s.kind for s in result.series) == ["ADC", "FLAIR"]
