"""Tests of the synthetic phantom generator (pure numpy / pydicom / nibabel, no database)."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from pydicom import dcmread
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    MRImageStorage,
    RLELossless,
)

from cases.phantoms import (
    DEFAULT_LABEL_VALUES,
    ETIOLOGIES,
    LABELS_CSV_COLUMNS,
    PRIVATE_CREATOR,
    SERIES_KINDS,
    PhantomCase,
    encoder_available,
    fake_phi,
    generate_case,
    make_phantoms,
    read_back_volume,
    write_dicom_series,
    write_mask_nifti,
    write_nifti,
)
from cases.phantoms import anatomy as anatomy_mod
from cases.phantoms.anatomy import Grid, Pose, base_anatomy, pose_tissues

SMALL = (8, 64, 64)


def _mni_points(case: PhantomCase) -> np.ndarray:
    """MNI RAS coordinates of the case's lesion voxels (undoing the head pose)."""
    kji = np.argwhere(case.mask > 0).astype(float)
    world = Grid(case.shape, case.spacing).index_to_ras(kji)
    pose = Pose(**case.meta["pose"])
    return pose.world_to_mni(world)


def _posed_tissues(case: PhantomCase) -> dict[str, np.ndarray]:
    """The case's posed tissue-fraction maps (gm, wm, csf, scalp), rebuilt from its pose."""
    base = base_anatomy(case.shape, case.spacing, case.meta["anatomy"])
    return pose_tissues(base, Grid(case.shape, case.spacing), Pose(**case.meta["pose"]))


def _posed_tissue(case: PhantomCase) -> np.ndarray:
    t = _posed_tissues(case)
    return t["gm"] + t["wm"]


@pytest.fixture(scope="module")
def full_case() -> PhantomCase:
    # The one full-size generation of the module (default 25 x 256 x 256 grid).
    return generate_case(etiology="cardioembolic", seed=11)


@pytest.fixture(scope="module")
def small_case() -> PhantomCase:
    return generate_case(etiology="atherothrombotic", seed=5, shape=SMALL, code="PH-0042")


def test_same_seed_gives_identical_case() -> None:
    a = generate_case(etiology="cardioembolic", seed=123, shape=SMALL)
    b = generate_case(etiology="cardioembolic", seed=123, shape=SMALL)
    c = generate_case(etiology="cardioembolic", seed=124, shape=SMALL)
    for kind in SERIES_KINDS:
        np.testing.assert_array_equal(a.images[kind], b.images[kind])
    np.testing.assert_array_equal(a.mask, b.mask)
    assert a.lesions == b.lesions
    assert not np.array_equal(a.images["DWI"], c.images["DWI"])


@pytest.mark.parametrize("etiology", ETIOLOGIES)
def test_shapes_dtypes_and_mask_values(etiology: str) -> None:
    case = generate_case(etiology=etiology, seed=3, shape=SMALL)
    assert set(case.images) == set(SERIES_KINDS)
    for vol in case.images.values():
        assert vol.shape == SMALL
        assert vol.dtype == np.float32
        assert np.isfinite(vol).all()
    assert case.mask.dtype == np.uint8
    assert case.mask.shape == SMALL
    label = DEFAULT_LABEL_VALUES[etiology]
    assert case.label_value == label
    assert set(np.unique(case.mask).tolist()) == {0, label}
    assert case.lesions
    assert case.affine.shape == (4, 4)


def test_custom_label_mapping_and_errors() -> None:
    case = generate_case(
        etiology="lacunar", seed=1, shape=SMALL, label_values={"lacunar": 9}, code="X-1"
    )
    assert set(np.unique(case.mask).tolist()) == {0, 9}
    assert case.code == "X-1"
    with pytest.raises(ValueError, match="unknown etiology"):
        generate_case(etiology="hemorrhagic", seed=1, shape=SMALL)
    with pytest.raises(ValueError, match="no value"):
        generate_case(etiology="other", seed=1, shape=SMALL, label_values={"lacunar": 4})


def test_tiny_grids_still_place_lesions() -> None:
    # A 4-slice slab has no cerebellum: "other" falls back to the occipital cortex.
    for etiology in ETIOLOGIES:
        for seed in range(3):
            case = generate_case(etiology=etiology, seed=seed, shape=(4, 32, 32))
            assert case.mask.any()
            assert set(np.unique(case.mask).tolist()) == {0, case.label_value}


def test_full_size_grid_geometry_and_appearance(full_case: PhantomCase) -> None:
    case = full_case
    assert case.shape == (25, 256, 256)
    assert case.spacing == pytest.approx((5.0, 0.9, 0.9))
    # RAS affine of the (x, y, z) NIfTI array: columns go to the patient's left (-x),
    # rows posterior (-y), slices superior (+z).
    assert np.diag(case.affine)[:3] == pytest.approx((-0.9, -0.9, 5.0))
    assert case.meta["anatomy"] in ("mni152", "analytic")
    # Lesions span 2-5 slices of 5 mm.
    for lesion in case.lesions:
        assert 2 <= lesion["n_slices"] <= 5
        assert lesion["location"] in {"cortical", "insular", "deep", "border-zone", "cerebellar"}
        assert lesion["hemisphere"] in {"left", "right"}
    lesion = case.mask > 0
    tissue = _posed_tissue(case)
    normal = (tissue > 0.9) & ~lesion
    dwi, adc, flair = (case.images[k] for k in SERIES_KINDS)
    # Acute infarct: restricted diffusion -> bright DWI, dark ADC.
    assert dwi[lesion].mean() > 1.4 * dwi[normal].mean()
    assert np.median(adc[lesion]) < 0.75 * np.median(adc[normal])
    assert 600 < np.median(adc[normal]) < 1000  # 1e-6 mm^2/s, normal parenchyma
    assert 300 < np.median(adc[lesion]) < 650
    csf = _posed_tissues(case)["csf"] > 0.9  # ventricles
    assert np.median(adc[csf]) > 2000
    assert np.median(dwi[csf]) < 0.5 * np.median(dwi[normal])
    assert np.median(flair[csf]) < 0.3 * np.median(flair[normal])  # dark-fluid
    # FLAIR: lesion mildly bright relative to parenchyma.
    assert flair[lesion].mean() > flair[normal].mean()


def test_lesions_lie_in_brain_tissue(full_case: PhantomCase, small_case: PhantomCase) -> None:
    for case in (full_case, small_case):
        tissue = _posed_tissue(case)
        assert (tissue[case.mask > 0] > 0.5).all()


def test_lacunar_is_single_small_deep_lesion() -> None:
    for seed in range(10):
        case = generate_case(etiology="lacunar", seed=seed, shape=SMALL)
        assert len(case.lesions) == 1
        (lesion,) = case.lesions
        assert lesion["location"] == "deep"
        # Axial diameter < 15 mm; through-plane at most 3 slices of 5 mm.
        assert max(lesion["extent_mm"][1:]) < 15.0
        assert 1 <= lesion["n_slices"] <= 3
        # Deep: basal ganglia / thalamus / capsule / corona radiata, away from the cortex.
        mni = _mni_points(case)
        assert np.abs(mni[:, 0]).max() < 36.0


def test_cardioembolic_is_multiple_and_often_bilateral() -> None:
    cases = [generate_case(etiology="cardioembolic", seed=s, shape=SMALL) for s in range(12)]
    multiple = sum(len(c.lesions) >= 2 for c in cases)
    bilateral = sum(len({les["hemisphere"] for les in c.lesions}) == 2 for c in cases)
    insular = sum(any(les["location"] == "insular" for les in c.lesions) for c in cases)
    assert multiple >= 8
    assert bilateral >= 4
    assert insular >= 4
    for c in cases:
        assert {les["location"] for les in c.lesions} <= {"cortical", "insular"}


def test_atherothrombotic_stays_in_one_hemisphere() -> None:
    chains = 0
    for seed in range(10):
        case = generate_case(etiology="atherothrombotic", seed=seed, shape=SMALL)
        x = _mni_points(case)[:, 0]
        # Voxel centres are coarse here: allow one voxel of slack at the midline.
        assert (x < 4.0).all() or (x > -4.0).all()
        assert len({les["hemisphere"] for les in case.lesions}) == 1
        chains += len(case.lesions) >= 3
        if len(case.lesions) == 1:
            assert case.lesions[0]["territory"] == "MCA"
            assert case.lesion_volume_ml > 3.0  # territorial, larger than cryptogenic ones
    assert chains >= 3


def test_cryptogenic_and_other_patterns() -> None:
    hidden = 0
    for seed in range(6):
        crypto = generate_case(etiology="cryptogenic", seed=seed, shape=SMALL)
        if crypto.hidden_mechanism == "cardioembolic":
            # An embolic pattern the work-up missed (undetected AF): the label stays.
            hidden += 1
            assert crypto.etiology == "cryptogenic" and len(crypto.lesions) >= 1
        else:
            assert len(crypto.lesions) == 1
            assert crypto.lesions[0]["location"] == "cortical"
            assert crypto.lesions[0]["territory"] in {"MCA", "ACA"}
        other = generate_case(etiology="other", seed=seed, shape=SMALL)
        # Posterior circulation: cerebellum or occipital cortex, behind the thalami.
        assert {les["territory"] for les in other.lesions} <= {"PCA", "SCA/PICA"}
        assert np.median(_mni_points(other)[:, 1]) < -45.0
    assert 0 < hidden < 6


def test_analytic_fallback_when_nilearn_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # A shape no other test uses, so the per-shape cache is built under the patch.
    monkeypatch.setattr(anatomy_mod, "nilearn_template_paths", lambda: None)
    case = generate_case(etiology="cardioembolic", seed=2, shape=(6, 48, 48))
    assert case.meta["anatomy"] == "analytic"
    assert case.mask.any()
    assert (_posed_tissue(case)[case.mask > 0] > 0.5).all()
    explicit = generate_case(etiology="lacunar", seed=2, shape=SMALL, anatomy="analytic")
    assert explicit.meta["anatomy"] == "analytic"
    assert explicit.lesions[0]["location"] == "deep"


def test_mni152_template_is_used_when_installed() -> None:
    if anatomy_mod.nilearn_template_paths() is None:
        pytest.skip("nilearn (MNI152 template) is not installed")
    case = generate_case(etiology="other", seed=1, shape=SMALL, anatomy="mni152")
    assert case.meta["anatomy"] == "mni152"


def test_dicom_series_round_trip(small_case: PhantomCase, tmp_path: Path) -> None:
    case = small_case
    study_uids, for_uids, series_uids = set(), set(), set()
    for kind in SERIES_KINDS:
        paths = write_dicom_series(case, kind, tmp_path / kind)
        assert len(paths) == case.shape[0]
        # File names do not reveal slice order: ingestion must sort by position.
        assert sorted(p.name for p in paths) != [p.name for p in paths]
        datasets = [dcmread(p) for p in paths]  # no force: valid Part 10 files
        vol, ipp = read_back_volume(sorted(paths))
        ds = datasets[0]
        tol = float(ds.RescaleSlope) / 2 + 1e-3
        np.testing.assert_allclose(vol, case.images[kind], atol=tol)
        assert ds.SOPClassUID == MRImageStorage
        assert ds.Modality == "MR"
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert (ds.Rows, ds.Columns) == case.shape[1:]
        # Geometry consistent with the RAS affine (DICOM is LPS).
        lps = np.diag([-1.0, -1.0, 1.0])
        for k, d in enumerate(datasets):
            expected = lps @ (case.affine[:3, :3] @ [0.0, 0.0, k] + case.affine[:3, 3])
            np.testing.assert_allclose(
                np.asarray(d.ImagePositionPatient, float), expected, atol=1e-3
            )
            assert float(d.SliceLocation) == pytest.approx(expected[2], abs=1e-3)
            assert int(d.InstanceNumber) == case.shape[0] - k
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx(case.spacing[1:])
        assert float(ds.SliceThickness) == pytest.approx(case.spacing[0])
        assert float(ds.SpacingBetweenSlices) == pytest.approx(case.spacing[0])
        np.testing.assert_allclose(np.diff(ipp[:, 2]), case.spacing[0], atol=1e-3)
        study_uids.add(ds.StudyInstanceUID)
        for_uids.add(ds.FrameOfReferenceUID)
        series_uids.add(ds.SeriesInstanceUID)
        assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
        if kind == "DWI":
            assert ds.SeriesDescription == "ep2d_diff_b1000_TRACE"
            assert list(ds.ImageType) == ["DERIVED", "PRIMARY", "DIFFUSION", "TRACE"]
            assert float(ds.DiffusionBValue) == 1000.0
            assert ds.PixelRepresentation == 1
        elif kind == "ADC":
            assert list(ds.ImageType)[:4] == ["DERIVED", "PRIMARY", "DIFFUSION", "ADC"]
            # Non-trivial rescale so ingestion's slope/intercept handling is exercised.
            assert float(ds.RescaleSlope) != 1.0
            assert float(ds.RescaleIntercept) != 0.0
        else:
            assert "FLAIR" in ds.SeriesDescription
            assert list(ds.ImageType)[:3] == ["ORIGINAL", "PRIMARY", "M"]
    # Co-registered series of one study: shared study and frame of reference.
    assert len(study_uids) == 1 and len(for_uids) == 1 and len(series_uids) == 3
    # Same case -> same UIDs on a second write.
    again = write_dicom_series(case, "DWI", tmp_path / "again", shuffle_names=False)
    assert [p.name for p in again][:2] == [
        f"IM{case.shape[0]:04d}.dcm",
        f"IM{case.shape[0] - 1:04d}.dcm",
    ]
    assert (
        dcmread(again[0]).SOPInstanceUID
        == dcmread(write_dicom_series(case, "DWI", tmp_path / "DWI")[0]).SOPInstanceUID
    )


def test_phi_present_and_overridable(small_case: PhantomCase, tmp_path: Path) -> None:
    phi = fake_phi(small_case.seed)
    assert phi == fake_phi(small_case.seed)
    (path, *_) = write_dicom_series(small_case, "FLAIR", tmp_path / "plain")
    ds = dcmread(path)
    assert "^" in str(ds.PatientName)
    assert str(ds.PatientName) == phi["PatientName"]
    for keyword in (
        "PatientID",
        "PatientBirthDate",
        "InstitutionName",
        "AccessionNumber",
        "StudyID",
        "StudyDate",
    ):
        assert str(getattr(ds, keyword)) == phi[keyword]
    for keyword in ("ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName"):
        assert str(getattr(ds, keyword))
    assert "OtherPatientIDsSequence" not in ds
    assert "RequestAttributesSequence" not in ds

    override = {"PatientName": "DOE^JANE", "PatientID": "MRN0001", "EthnicGroup": "X"}
    (path, *_) = write_dicom_series(
        small_case, "ADC", tmp_path / "extra", phi=override, extra_phi=True
    )
    ds = dcmread(path)
    assert str(ds.PatientName) == "DOE^JANE" and ds.PatientID == "MRN0001"
    assert ds.EthnicGroup == "X"
    assert str(ds.RequestAttributesSequence[0].PatientName) == "DOE^JANE"
    assert str(ds.ReferencedStudySequence[0].PatientName) == "DOE^JANE"
    assert ds.OtherPatientIDsSequence[0].PatientID == phi["OtherPatientID"]
    assert "ProcedureCodeSequence" in ds
    block = ds.private_block(0x0029, PRIVATE_CREATOR)
    assert block[0x01].value == "DOE^JANE"
    assert block[0x02].value == "MRN0001"


@pytest.mark.parametrize(
    "transfer_syntax",
    [
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
    ],
    ids=lambda uid: uid.name,
)
def test_transfer_syntaxes_decode_to_same_values(
    small_case: PhantomCase, tmp_path: Path, transfer_syntax: str
) -> None:
    if not encoder_available(transfer_syntax):
        pytest.skip(f"no encoder for {transfer_syntax} installed (pylibjpeg / pyjpegls)")
    for kind in ("DWI", "ADC"):  # signed and unsigned storage
        ref, _ = read_back_volume(write_dicom_series(small_case, kind, tmp_path / "ref" / kind))
        paths = write_dicom_series(
            small_case, kind, tmp_path / "ts" / kind, transfer_syntax=transfer_syntax
        )
        assert dcmread(paths[0]).file_meta.TransferSyntaxUID == transfer_syntax
        vol, _ = read_back_volume(paths)
        np.testing.assert_array_equal(vol, ref)


def test_nifti_round_trip(small_case: PhantomCase, tmp_path: Path) -> None:
    for kind in SERIES_KINDS:
        path = write_nifti(small_case, kind, tmp_path / f"{kind}.nii.gz")
        img = nib.load(path)
        np.testing.assert_allclose(img.affine, small_case.affine, atol=1e-5)
        data = np.asanyarray(img.dataobj).transpose(2, 1, 0)
        np.testing.assert_array_equal(data, small_case.images[kind])
    mask_img = nib.load(write_mask_nifti(small_case, tmp_path / "mask.nii.gz"))
    assert mask_img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(
        np.asanyarray(mask_img.dataobj).transpose(2, 1, 0), small_case.mask
    )
    assert nib.aff2axcodes(mask_img.affine) == ("L", "P", "S")


def test_make_phantoms_writes_layout_and_labels(tmp_path: Path) -> None:
    cases = make_phantoms(out=tmp_path, cases=6, seed=4, shape=(6, 48, 48))
    assert [c.code for c in cases] == [f"PH-{i:04d}" for i in range(1, 7)]
    # Round-robin over the five default etiologies in label-value order.
    assert [c.etiology for c in cases] == [*ETIOLOGIES, ETIOLOGIES[0]]
    with (tmp_path / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == LABELS_CSV_COLUMNS
    for row, case in zip(rows, cases, strict=True):
        assert row["code"] == case.code and row["etiology"] == case.etiology
        assert int(row["label_value"]) == DEFAULT_LABEL_VALUES[case.etiology]
        assert int(row["n_lesions"]) == len(case.lesions)
        assert float(row["lesion_volume_ml"]) == pytest.approx(case.lesion_volume_ml, abs=1e-3)
        case_dir = tmp_path / case.code
        assert (case_dir / "mask.nii.gz").is_file()
        for kind in SERIES_KINDS:
            assert (case_dir / f"{kind}.nii.gz").is_file()
            assert len(list((case_dir / kind).glob("*.dcm"))) == 6
    # The recorded seed regenerates the case.
    again = generate_case(
        etiology=rows[2]["etiology"], seed=int(rows[2]["seed"]), shape=(6, 48, 48)
    )
    np.testing.assert_array_equal(again.mask, cases[2].mask)

    nifti_only = make_phantoms(
        out=tmp_path / "n", cases=2, seed=1, shape=(6, 48, 48), formats=("nifti",),
        etiologies=["lacunar"],
    )  # fmt: skip
    assert {c.etiology for c in nifti_only} == {"lacunar"}
    assert not list((tmp_path / "n").rglob("*.dcm"))
    with pytest.raises(ValueError, match="unknown formats"):
        make_phantoms(out=tmp_path / "x", cases=1, seed=1, shape=(6, 48, 48), formats=("png",))
