"""Synthetic brain-MRI phantoms: DWI / ADC / FLAIR with etiology-patterned lesion masks.

Pure numpy / scipy / pydicom / nibabel (no Django), so benchmarks and ML tests can use it
without settings. No patient data: anatomy comes from the MNI152 template shipped with
nilearn (or an analytic brain), PHI is fake.

Arrays are (z, y, x); NIfTI files are (x, y, z) with :attr:`PhantomCase.affine` (RAS).
"""

from .anatomy import DEFAULT_SHAPE, DEFAULT_SPACING, STANDARD_FOV_MM, spacing_for_shape
from .batch import LABELS_CSV_COLUMNS, case_seed, make_phantoms
from .dicom import (
    PRIVATE_CREATOR,
    encoder_available,
    fake_phi,
    read_back_volume,
    series_uids,
    supported_transfer_syntaxes,
    write_dicom_series,
)
from .generator import (
    ADC_UNITS,
    DEFAULT_LABEL_VALUES,
    SERIES_KINDS,
    PhantomCase,
    acquisition_variant,
    generate_case,
)
from .lesions import ETIOLOGIES
from .nifti import write_mask_nifti, write_nifti

__all__ = [
    "ADC_UNITS",
    "DEFAULT_LABEL_VALUES",
    "DEFAULT_SHAPE",
    "DEFAULT_SPACING",
    "ETIOLOGIES",
    "LABELS_CSV_COLUMNS",
    "PRIVATE_CREATOR",
    "SERIES_KINDS",
    "STANDARD_FOV_MM",
    "PhantomCase",
    "acquisition_variant",
    "case_seed",
    "encoder_available",
    "fake_phi",
    "generate_case",
    "make_phantoms",
    "read_back_volume",
    "series_uids",
    "spacing_for_shape",
    "supported_transfer_syntaxes",
    "write_dicom_series",
    "write_mask_nifti",
    "write_nifti",
]
