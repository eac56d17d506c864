"""Inputs to de-identified volumes: every file read once, zips opened, DICOM and NIfTI
parsed and built into volumes (no database, no storage)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from cases.dicom import BuiltVolume, DicomSlice, Skipped, dicom_read, dicom_volumes_build
from cases.models import Series
from strokeaid_site.conf import app_settings
from strokeaid_site.errors import ApplicationError

from ..nifti_io import is_nifti_name, nifti_read
from .archive import ZIP_MAGIC, zip_entries
from .inputs import ParsedUpload, ProgressCallback, UploadInput


def _is_zip(item: UploadInput, head: bytes) -> bool:
    return item.name.lower().endswith(".zip") or head[:4] in ZIP_MAGIC


def upload_parse(
    *,
    inputs: list[UploadInput],
    kind: str | None,
    progress: ProgressCallback | None = None,
) -> ParsedUpload:
    """Reads every input once and builds de-identified volumes (no database, no storage).

    Raises ``ApplicationError`` naming the offending ``file`` (and zip ``entry``).
    """
    secret = app_settings.UID_SECRET
    max_bytes = int(app_settings.ZIP_MAX_TOTAL_BYTES)
    max_ratio = float(app_settings.ZIP_MAX_RATIO)
    slices: list[DicomSlice] = []
    volumes: list[BuiltVolume] = []
    skipped: list[Skipped] = []

    def take_dicom(data: bytes, name: str) -> None:
        result = dicom_read(data, name=name)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            slices.extend(result)

    total = len(inputs)
    for index, item in enumerate(inputs):
        with item.opener() as fh:
            fh.seek(0)
            head = fh.read(4)
            fh.seek(0)
            if _is_zip(item, head):
                for entry, data in zip_entries(fh, archive=item.name):
                    label = f"{item.name}/{entry}"
                    if data is None:
                        skipped.append(Skipped(label, _("Not an image file.")))
                    elif is_nifti_name(entry):
                        if not kind:
                            raise ApplicationError(
                                _("A NIfTI upload needs a 'kind' (DWI, ADC, FLAIR, CT or OTHER)."),
                                {"file": label, "field": "kind"},
                            )
                        volumes.append(
                            nifti_read(data, name=label, kind=kind, secret=secret,
                                       max_bytes=max_bytes, max_ratio=max_ratio)
                        )  # fmt: skip
                    else:
                        take_dicom(data, label)
            elif is_nifti_name(item.name):
                volumes.append(
                    nifti_read(fh.read(), name=item.name, kind=str(kind), secret=secret,
                               max_bytes=max_bytes, max_ratio=max_ratio)
                )  # fmt: skip
            else:
                take_dicom(fh.read(), item.name)
        if progress is not None:
            progress(0.9 * (index + 1) / total)
    if slices:
        built = dicom_volumes_build(slices, secret=secret)
        for volume in built:
            if kind and volume.kind == Series.Kind.OTHER:
                volume.kind = kind
        volumes = built + volumes
    if not volumes:
        raise ApplicationError(
            _("The upload holds no image this platform can use."),
            {"file": inputs[0].name, "skipped": [s.as_dict() for s in skipped[:50]]},
        )
    return ParsedUpload(volumes=volumes, skipped=skipped)
