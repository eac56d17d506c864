"""Dataset exports: request (data managers, deduplicated), build in a task, store the zip.

Each export freezes its data as a dataset snapshot (the inference app's
``dataset_snapshot_create``: which cases, which mask revision of each, which split), then
an exporter writes the files, and the zip (with ``manifest.json``: SHA-256 of every file,
the filters, the snapshot and the revisions) is stored in one ``storage.transactional()``
block: a failed export leaves no file behind.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, has_role
from annotation.models import AnnotationRevision
from cases import storage
from cases.models import Label, Series
from cases.services.audit import audit_record
from core.jobs import job_heartbeat, job_request, jobs_reap_stale
from etiology.models import Workup
from etiology.reasoning.workup import FIELD_NAMES as WORKUP_FIELDS
from inference.exports.formats.base import ExportCase, pseudonym
from inference.exports.formats.dicom_seg import export_dicom_seg
from inference.exports.formats.manifest import ExportTree, json_bytes
from inference.exports.formats.nnunet import export_nnunet
from inference.models import DatasetSnapshot, ExportJob, JobStatus
from inference.services.dataset import dataset_candidates, dataset_snapshot_create
from strokeaid_site.errors import ApplicationError, ForbiddenError
from strokeaid_site.events import job_event_send

logger = logging.getLogger(__name__)

FORMATS = tuple(ExportJob.Format.values)
#: Filters a request may carry (see ``dataset_candidates``).
FILTER_KEYS = ("etiology", "created_after", "created_before")
MANIFEST_VERSION = 1


def _send(job: ExportJob) -> None:
    job_event_send(
        "export",
        job.pk,
        {
            "id": job.pk,
            "status": job.status,
            "progress": round(job.progress, 4),
            "error": job.error or None,
        },
    )


def export_request(
    *,
    user: User,
    format: str,
    case_ids: list[int] | None,
    filters: dict[str, Any] | None = None,
) -> tuple[ExportJob, bool]:
    """Queues an export; returns ``(job, created)``.

    ``case_ids=None``: every confirmed case with an approved annotation (narrowed by
    ``filters``); a list: exactly those cases with their newest mask revision. The same
    request while an identical export is queued or running returns that job.

    Raises:
        ForbiddenError: the user is not a data manager.
        ApplicationError: unknown format, unknown cases, cases without a mask, nothing to
            export.
    """
    if not has_role(user, DATA_MANAGER):
        raise ForbiddenError(_("Only data managers export datasets."))
    if format not in FORMATS:
        raise ApplicationError(
            _("Unknown export format."), {"format": format, "allowed": list(FORMATS)}
        )
    clean = {k: filters[k] for k in FILTER_KEYS if filters and filters.get(k) not in (None, "")}
    ids = sorted({int(i) for i in case_ids}) if case_ids is not None else None
    # Fails fast in the request (400) instead of queueing a job that cannot succeed.
    cases, _masks, _mode = dataset_candidates(case_ids=ids, filters=clean)
    if not cases:
        raise ApplicationError(
            _("Nothing to export: no confirmed case with an approved annotation matches."),
            {"filters": clean},
        )
    exports_reap_stale()
    target = export_target(format=format, case_ids=ids, filters=clean)

    def create() -> ExportJob:
        job = ExportJob.objects.create(
            format=format, case_ids=ids, filters=clean, created_by=user, target=target
        )
        audit_record(
            actor=user,
            verb="export.request",
            target=job,
            data={"format": format, "cases": ids, "filters": clean},
        )
        return job

    return job_request(
        model=ExportJob,
        target=target,
        create=create,
        task="inference.exports.tasks.export_execute",
        group="export",
    )


def exports_reap_stale(*, older_than: timedelta | None = None) -> list[int]:
    """Marks exports whose worker is gone as interrupted (``core.jobs.jobs_reap_stale``)."""
    return jobs_reap_stale(
        model=ExportJob,
        message=_("The worker stopped before the export finished."),
        older_than=older_than,
        notify=_send,
    )


def export_target(*, format: str, case_ids: list[int] | None, filters: dict[str, Any]) -> str:
    """Identical exports (format, cases, filters) share one active job."""
    body = json.dumps([case_ids, filters], sort_keys=True)
    return f"{format}:{hashlib.sha256(body.encode()).hexdigest()[:40]}"


def export_execute(*, job_id: int) -> ExportJob:
    """Builds export ``job_id`` (worker task). Only a queued job starts; failures are kept on
    the row and leave no file."""
    claimed = ExportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), progress=0.0
    )
    job = ExportJob.objects.select_related("created_by").get(pk=job_id)
    if not claimed:
        return job
    _send(job)
    try:
        with job_heartbeat(model=ExportJob, job_id=job_id):
            export_build(job=job)
    except Exception as exc:
        logger.exception("export %s failed", job_id)
        message = (
            exc.message
            if isinstance(exc, ApplicationError)
            else (_("Export failed: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"})
        )
        ExportJob.objects.filter(pk=job_id).update(
            status=JobStatus.FAILED, error=str(message)[:4000], finished_at=timezone.now()
        )
    job.refresh_from_db()
    _send(job)
    return job


def _progress_writer(job: ExportJob, start: float, span: float) -> Any:
    last = {"t": 0.0, "p": -1.0}

    def report(fraction: float) -> None:
        value = start + span * max(0.0, min(1.0, fraction))
        now = time.monotonic()
        # Throttled: a row update and a websocket message at most twice a second.
        if value < 1.0 and now - last["t"] < 0.5 and value - last["p"] < 0.1:
            return
        last.update(t=now, p=value)
        ExportJob.objects.filter(pk=job.pk).update(progress=round(value, 4))
        job.progress = value
        _send(job)

    return report


def export_cases_from_snapshot(*, snapshot: DatasetSnapshot) -> list[ExportCase]:
    """The snapshot's cases with their series (volumes joined) and mask revision (3 queries)."""
    items = list(snapshot.items.select_related("case", "etiology").order_by("case_id"))
    series_ids = {sid for item in items for sid in item.series_ids.values()}
    series_ids |= {item.revisions[0]["series"] for item in items if item.revisions}
    series = {
        s.pk: s for s in Series.objects.filter(pk__in=series_ids).select_related("volume", "study")
    }
    revisions = {
        r.pk: r
        for r in AnnotationRevision.objects.filter(
            pk__in=[item.revisions[0]["revision"] for item in items if item.revisions]
        ).select_related("annotation")
    }
    out = []
    for item in items:
        if item.case is None or not item.revisions:
            raise ApplicationError(
                _("Case %(code)s of the dataset was deleted.") % {"code": item.case_code}
            )
        ref = item.revisions[0]
        revision = revisions.get(ref["revision"])
        mask_series = series.get(ref["series"])
        if revision is None or mask_series is None:
            raise ApplicationError(
                _("The mask of case %(code)s was deleted.") % {"code": item.case_code}
            )
        out.append(
            ExportCase(
                case_id=item.case.pk,
                name=f"case{item.case.pk:05d}",
                code=item.case.code,
                etiology=item.etiology.name if item.etiology else None,
                confirmed=item.case.confirmed,
                split=item.split,
                series={k: series[sid] for k, sid in item.series_ids.items() if sid in series},
                mask_series=mask_series,
                mask_key=revision.key,
                revision_id=revision.pk,
                revision_number=revision.number,
                annotator=pseudonym(
                    revision.annotation.annotator_id, consensus=revision.annotation.is_consensus
                ),
                state=revision.annotation.state,
            )
        )
    return out


def labels_csv(cases: list[ExportCase]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(
        [
            "case",
            "code",
            "etiology",
            "confirmed",
            "split",
            "annotator",
            "revision",
            "revision_id",
            "state",
        ]
    )
    for c in sorted(cases, key=lambda c: c.name):
        writer.writerow(
            [
                c.name,
                c.code,
                c.etiology or "",
                "true" if c.confirmed else "false",
                c.split,
                c.annotator,
                # The annotation's own revision number (what the editor shows); the global
                # revision id stays beside it for tracing the exact row.
                c.revision_number,
                c.revision_id,
                c.state,
            ]
        )
    return buf.getvalue().encode()


def clinical_csv(cases: list[ExportCase]) -> bytes:
    """The diagnostic work-up of every exported case (one row each; empty = unknown)."""
    workups = {
        row.case_id: row for row in Workup.objects.filter(case_id__in=[c.case_id for c in cases])
    }
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["case", "code", *WORKUP_FIELDS])
    for c in sorted(cases, key=lambda c: c.name):
        row = workups.get(c.case_id)
        values = [getattr(row, f) if row is not None else None for f in WORKUP_FIELDS]
        writer.writerow(
            [
                c.name,
                c.code,
                *(
                    "" if v is None else ("true" if v is True else "false" if v is False else v)
                    for v in values
                ),
            ]
        )
    return buf.getvalue().encode()


def export_build(*, job: ExportJob) -> ExportJob:
    """Snapshot -> files -> zip -> storage + row, all or nothing."""
    report = _progress_writer(job, 0.0, 0.95)
    snapshot = dataset_snapshot_create(
        user=job.created_by,
        case_ids=job.case_ids,
        filters=job.filters or None,
        name=f"export {job.pk}",
    )
    cases = export_cases_from_snapshot(snapshot=snapshot)
    labels = {lab.name: lab.value for lab in Label.objects.filter(label_set=snapshot.label_set)}
    notes: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        tree = ExportTree(Path(tmp) / "tree")
        if job.format == ExportJob.Format.NNUNET:
            details = export_nnunet(
                cases=cases, tree=tree, labels=labels, progress=report, notes=notes
            )
        else:
            details = export_dicom_seg(
                cases=cases,
                tree=tree,
                label_names={v: k for k, v in labels.items()},
                progress=report,
                notes=notes,
            )
        exported = set(details.get("exported_cases", []))
        kept = [c for c in cases if c.name in exported]
        tree.add("labels.csv", labels_csv(kept))
        tree.add("clinical.csv", clinical_csv(kept))
        splits = {
            split: sorted(c.name for c in kept if c.split == split)
            for split in ("train", "val", "test")
        }
        tree.add(
            "splits.json",
            json_bytes({**splits, "seed": snapshot.seed, "fractions": snapshot.fractions}),
        )
        manifest = {
            "version": MANIFEST_VERSION,
            "format": job.format,
            "created_at": timezone.now().isoformat(),
            "export": job.pk,
            "filters": job.filters,
            "requested_cases": job.case_ids,
            "snapshot": {
                "id": snapshot.pk,
                "seed": snapshot.seed,
                "fractions": snapshot.fractions,
                "mode": (snapshot.filters or {}).get("mode"),
            },
            "labels": labels,
            "cases": [
                {
                    "case": c.name,
                    "code": c.code,
                    "etiology": c.etiology,
                    "split": c.split,
                    "annotator": c.annotator,
                    "revision": c.revision_id,
                    "revision_number": c.revision_number,
                    "mask_series": c.mask_series.kind,
                    "series": {k: s.pk for k, s in sorted(c.series.items())},
                }
                for c in cases
            ],
            "details": details,
            "notes": notes,
            "files": dict(sorted(tree.checksums.items())),
        }
        manifest_data = json_bytes(manifest)
        zip_path = Path(tmp) / "export.zip"
        with zip_path.open("wb") as out:
            tree.write_zip(out, manifest=manifest_data)
        report(0.97)
        key = storage.export_key(export_id=job.pk, name=f"stroke-aid-{job.format}-{job.pk}.zip")
        with storage.transactional():
            with zip_path.open("rb") as fh:
                storage.write_bytes(key, fh)
            digest = storage.sha256_of(key)
            ExportJob.objects.filter(pk=job.pk).update(
                status=JobStatus.DONE,
                progress=1.0,
                snapshot=snapshot,
                result_key=key,
                result_bytes=zip_path.stat().st_size,
                sha256=digest,
                manifest=manifest,
                finished_at=timezone.now(),
            )
            audit_record(
                actor=job.created_by,
                verb="export.done",
                target=job,
                data={"format": job.format, "cases": len(cases), "sha256": digest},
            )
    job.refresh_from_db()
    return job


def export_download_name(job: ExportJob) -> str:
    return f"stroke-aid-{job.format}-{job.pk}.zip"
