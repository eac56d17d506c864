"""Writes of the review room: the reviewer's actions on a prediction (accept it as a draft
mask, flag it) and the model review (every case of a model's held-out split predicted and its
numbers cached)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import NEUROLOGIST, has_role
from annotation.models import Annotation, AnnotationRevision
from annotation.services import annotation_import_mask
from cases import storage
from cases.models import AuditEvent, Series
from cases.services.audit import audit_record
from inference.ml import metrics
from inference.models import DatasetItem, JobStatus, ModelVersion, PredictionJob, PredictionSeries
from inference.review.comparison import case_numbers
from inference.review.selectors import labels_by_value, model_review_key, review_pair_get
from inference.services.arrays import mask_to_reference
from inference.services.prediction import (
    prediction_execute,
    prediction_label_volume,
    prediction_request,
)
from inference.services.summary import summary_of
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError


# --- reviewer actions -----------------------------------------------------------------------
def _prediction_output(*, series: Series, prediction_id: int | None) -> PredictionSeries:
    pair = review_pair_get(series=series, prediction_id=prediction_id)
    if pair.prediction is None:
        raise NotFoundError(_("This series has no prediction yet."), {"series": series.pk})
    return pair.prediction


def prediction_accept_as_draft(
    *, user: User, series: Series, prediction_id: int | None
) -> Annotation:
    """Copies a prediction into the caller's own mask as a new draft revision, so the model's
    output becomes a starting point to correct rather than a mask to draw from scratch.

    Raises:
        ForbiddenError: not a neurologist (only annotators own masks).
        NotFoundError: no such prediction on this series.
    """
    if not has_role(user, NEUROLOGIST):
        raise ForbiddenError(_("Only neurologists draw lesion masks."))
    output = _prediction_output(series=series, prediction_id=prediction_id)
    mask = np.asarray(storage.read_array(output.labels_key), dtype=np.uint8)
    annotation = annotation_import_mask(
        user=user,
        series=series,
        mask=mask,
        state=Annotation.State.DRAFT,
        note=f"accepted prediction {output.job_id} (model {output.job.model_id})",
        source=AnnotationRevision.Source.PREDICTION,
    )
    # annotation_import_mask keeps an approved mask approved only for approved imports; a
    # draft import of new voxels sends it back to draft, which is what accepting means.
    return annotation


def prediction_flag(
    *, user: User, series: Series, prediction_id: int | None, comment: str
) -> AuditEvent:
    """Flags a prediction as wrong or doubtful (an audit event the review pages list)."""
    if not comment.strip():
        raise ApplicationError(_("Say what is wrong with the prediction."), {"field": "comment"})
    output = _prediction_output(series=series, prediction_id=prediction_id)
    return audit_record(
        actor=user,
        verb="prediction.flagged",
        target=output.job,
        case=series.case,
        data={"series": series.pk, "comment": comment.strip()[:2000]},
    )


def evaluation_rows(
    *, model: ModelVersion, items: list[DatasetItem], user: User | None
) -> list[dict[str, Any]]:
    """Per-case numbers of ``model`` on snapshot ``items`` (their approved masks as truth):
    done predictions of this model are reused, missing ones are run now."""
    labels = {v: lab.name for v, lab in labels_by_value().items()}
    series = {
        s.pk: s
        for s in Series.objects.filter(
            pk__in=[i.revisions[0]["series"] for i in items if i.revisions]
        )
    }
    rows: list[dict[str, Any]] = []
    for item in items:
        if item.case is None or not item.revisions:
            continue
        job = (
            PredictionJob.objects.filter(case=item.case, model=model, status=JobStatus.DONE)
            .select_related("reference_series", "etiology")
            .order_by("-finished_at", "-id")
            .first()
        )
        if job is None:
            if user is None:
                raise ApplicationError(_("Nobody to run the predictions as."))
            job, _created = prediction_request(user=user, case=item.case, model=model)
            job = prediction_execute(job_id=job.pk)
        if job.status != JobStatus.DONE or job.reference_series is None:
            rows.append({"case": item.case_id, "code": item.case_code, "status": job.status})
            continue
        rev = item.revisions[0]
        reference = job.reference_series
        truth = mask_to_reference(
            storage.read_array(rev["key"]), mask_series=series[rev["series"]], reference=reference
        )
        pred = prediction_label_volume(job=job)
        numbers = case_numbers(
            annotation=truth, prediction=pred, spacing=reference.spacing, labels=labels
        )
        true_name = item.etiology.name if item.etiology else None
        predicted = job.etiology.name if job.etiology else None
        rows.append(
            {
                "case": item.case_id,
                "code": item.case_code,
                "status": "done",
                "series": reference.pk,
                "prediction": job.pk,
                "annotation": rev["annotation"],
                "etiology": true_name,
                "predicted": predicted,
                "confidence": job.confidence,
                "correct": bool(true_name and predicted == true_name),
                # 1 - p(true etiology): 0 for a confident right answer, 1 for a wrong one.
                "etiology_error": (
                    round(1.0 - float((job.probabilities or {}).get(true_name, 0.0)), 4)
                    if true_name
                    else None
                ),
                **numbers,
            }
        )
    return rows


def model_review_compute(
    *, model_id: int, split: str, user_id: int | None = None
) -> dict[str, Any]:
    """Predicts every case of the model's ``split`` (reusing done predictions of this model,
    otherwise through the prediction service) and caches per-case and summary numbers."""
    model = ModelVersion.objects.select_related("dataset", "created_by").get(pk=model_id)
    if model.dataset_id is None:
        raise ApplicationError(_("This model has no dataset to review it on."))
    user = (
        get_user_model().objects.filter(pk=user_id).first() if user_id else None
    ) or model.created_by
    labels = {v: lab.name for v, lab in labels_by_value().items()}
    items = list(
        DatasetItem.objects.filter(snapshot_id=model.dataset_id, split=split)
        .select_related("case", "etiology")
        .order_by("case_id")
    )
    rows = evaluation_rows(model=model, items=items, user=user)
    done = [r for r in rows if r["status"] == "done"]
    names = [labels[v] for v in sorted(labels)]
    y_true = [r["etiology"] for r in done if r["etiology"]]
    y_pred = [r["predicted"] for r in done if r["etiology"]]
    report = metrics.classification_report(y_true, y_pred, names) if y_true else None
    cal = metrics.calibration(
        [r["confidence"] or 0.0 for r in done if r["etiology"]],
        [r["correct"] for r in done if r["etiology"]],
        n_bins=10,
    )
    result = {
        "model": model.pk,
        "split": split,
        "computed_at": timezone.now().isoformat(),
        "status": "done",
        "labels": names,
        "cases": rows,
        "dice": {
            # Dice of a label only over cases where it occurs (in truth or prediction): the
            # trivial 1.0 of "absent from both" would hide every real error.
            name: [r["labels"][name]["dice"] for r in done if r["labels"][name]["present"]]
            for name in names
        },
        "confusion": report.confusion.tolist() if report else [],
        "accuracy": report.accuracy if report else None,
        "macro_f1": report.macro_f1 if report else None,
        # Each headline with the number of cases it rests on and its bootstrap interval.
        "summary": summary_of(rows, names),
        "calibration": {
            "ece": cal.ece,
            "mce": cal.mce,
            "bins": [b.__dict__ for b in cal.bins],
        },
    }
    storage.write_bytes(model_review_key(model, split), json.dumps(result).encode())
    return result


def model_review_request(*, model: ModelVersion, split: str, user: User) -> None:
    """Queues the evaluation of ``model`` on ``split`` (after commit)."""
    from django.db import transaction
    from django_q.tasks import async_task

    model_id, user_id = model.pk, user.pk
    transaction.on_commit(
        lambda: async_task(
            "inference.review.tasks.model_review_compute",
            model_id,
            split,
            user_id,
            task_name=f"model-review-{model_id}-{split}",
            group="review",
        )
    )
