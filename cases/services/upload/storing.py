"""Parsed volumes to series of a case, all or nothing: one transaction and one storage
block, so a failure leaves neither rows nor files."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Case, Series, Study
from strokeaid_site.errors import ApplicationError

from ..audit import audit_record
from ..series import series_create_from_array
from .inputs import ParsedUpload, ProgressCallback, UploadInput, UploadResult, upload_limits_check
from .parsing import upload_parse


def upload_store(*, user: User, case: Case, parsed: ParsedUpload) -> list[Series]:
    """Stores the parsed volumes as series of ``case`` in one all-or-nothing block.

    Precondition: ``user`` may change ``case`` (the caller checked with the selector).
    A series already present in the case (same re-mapped SeriesInstanceUID, or the same NIfTI
    content) is refused: a second upload of the same study must not duplicate it.
    """
    uids = [v.series_uid for v in parsed.volumes]
    seen: set[str] = set()
    for volume in parsed.volumes:
        if volume.series_uid in seen:
            raise ApplicationError(
                _("The same series is in the upload twice."), {"file": volume.files[0]}
            )
        seen.add(volume.series_uid)
    with storage.transactional():
        # Serialises concurrent uploads to one case, so the duplicate check below holds.
        Case.objects.select_for_update().filter(pk=case.pk).first()
        existing = set(
            Series.objects.filter(case=case, series_uid__in=uids).values_list(
                "series_uid", flat=True
            )
        )
        for volume in parsed.volumes:
            if volume.series_uid in existing:
                raise ApplicationError(
                    _("This series was already uploaded to the case."),
                    {"file": volume.files[0], "kind": volume.kind},
                )
        studies: dict[str, Study] = {}
        created: list[Series] = []
        for volume in parsed.volumes:
            study = None
            if volume.study_uid:
                study = studies.get(volume.study_uid)
                if study is None:
                    # No get_or_create (and its savepoint): the case row lock serialises us.
                    study = Study.objects.filter(case=case, study_uid=volume.study_uid).first()
                    if study is None:
                        study = Study.objects.create(
                            case=case,
                            study_uid=volume.study_uid,
                            description=volume.study_description[:200],
                        )
                    studies[volume.study_uid] = study
            created.append(
                series_create_from_array(
                    case=case,
                    kind=volume.kind,
                    array=volume.array,
                    spacing=volume.spacing,
                    affine=volume.affine,
                    source=Series.Source.DICOM if volume.source == "dicom" else Series.Source.NIFTI,
                    series_uid=volume.series_uid,
                    study=study,
                    description=volume.description,
                    header=volume.header,
                    quarantine_reason=volume.quarantine_reason,
                )
            )
        audit_record(
            actor=user,
            verb="series.uploaded",
            target=case,
            case=case,
            data={
                "series": [s.pk for s in created],
                "kinds": [s.kind for s in created],
                "quarantined": [s.pk for s in created if s.quarantined],
                "skipped": len(parsed.skipped),
            },
        )
    return created


def upload_ingest(
    *,
    user: User,
    case: Case,
    inputs: list[UploadInput],
    kind: str | None = None,
    progress: ProgressCallback | None = None,
) -> UploadResult:
    """Parses and stores an upload in this process; returns the new series and skip notes."""
    upload_limits_check(inputs=inputs, kind=kind)
    parsed = upload_parse(inputs=inputs, kind=kind or None, progress=progress)
    series = upload_store(user=user, case=case, parsed=parsed)
    return UploadResult(series=series, skipped=[s.as_dict() for s in parsed.skipped])
