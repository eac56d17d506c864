"""DICOM reading: files to slices, slices to de-identified volumes (pure pydicom/numpy, no
database, no storage).

Geometry follows nibabel/dcm2niix: the array is stored (z, y, x) = (slice, row, column); the
affine maps voxel (i=x=column, j=y=row, k=z=slice) to patient RAS millimetres. DICOM patient
coordinates are LPS, hence the final ``diag(-1, -1, 1)``. Slices are ordered by their
ImagePositionPatient projected on the slice normal (the cross product of the two
ImageOrientationPatient direction cosines) - never by InstanceNumber or file name, which
scanners and PACS exports do not keep consistent.

Every file is read once (``dcmread`` of the bytes, pixels decoded by pydicom's plugins:
JPEG 2000, JPEG-LS, RLE, deflate and big-endian give the same voxels as uncompressed data),
the identifying parts of the header are never copied anywhere, and only the de-identified
summary made by ``header_summary`` leaves this module with the voxels.

Modules: ``reading`` (a file to its slices; ``mosaic`` for Siemens mosaics), ``kind`` (b-value,
series kind, burned-in text), ``volumes`` (slices to volumes), ``summary`` (the stored header
summary), ``deid`` (de-identification), ``header`` and ``slices`` (shared helpers and types).
"""

from .kind import b_value_of, burned_in_reason, series_kind_detect
from .mosaic import is_mosaic
from .reading import dicom_read, has_dicom_preamble
from .slices import BuiltVolume, DicomSlice, Skipped
from .summary import header_summary
from .volumes import dicom_volumes_build

__all__ = [
    "BuiltVolume",
    "DicomSlice",
    "Skipped",
    "b_value_of",
    "burned_in_reason",
    "dicom_read",
    "dicom_volumes_build",
    "has_dicom_preamble",
    "header_summary",
    "is_mosaic",
    "series_kind_detect",
]
