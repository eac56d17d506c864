"""Reads of the review room: which annotation and prediction a case review compares, its
numbers, the lesion slices, the flags on predictions, and the cached model reviews."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from django.utils.translation import gettext as _

from annotation.models import Annotation, AnnotationRevision
from annotation.selectors import annotation_list_for_series, mask_array
from cases import storage
from cases.models import AuditEvent, Label, Series
from cases.selectors import labels_active
from inference.models import DatasetItem, JobStatus, ModelVersion, PredictionJob, PredictionSeries
from inference.review.agreement import implied_etiology
from inference.review.comparison import case_numbers
from strokeaid_site.errors import ApplicationError, NotFoundError


@dataclass
class ReviewPair:
    """What a case review compares: one annotation and one prediction of one series."""

    series: Series
    annotation: Annotation | None
    prediction: PredictionSeries | None

    def annotation_mask(self, *, mmap: bool = True) -> npt.NDArray[np.uint8] | None:
        if self.annotation is None or self.annotation.current_revision is None:
            return None
        return mask_array(revision=self.annotation.current_revision, mmap=mmap)

    def prediction_mask(self, *, mmap: bool = True) -> npt.NDArray[np.uint8] | None:
        if self.prediction is None:
            return None
        return storage.read_array(self.prediction.labels_key, mmap=mmap)


def _default_annotation(annotations: list[Annotation]) -> Annotation | None:
    """The reference to compare with: the consensus, else an approved mask (newest review),
    else the newest saved one."""
    saved = [a for a in annotations if a.current_revision is not None]
    for pick in (
        [a for a in saved if a.is_consensus],
        sorted(
            [a for a in saved if a.state == Annotation.State.APPROVED],
            key=lambda a: (a.reviewed_at or a.updated_at, a.pk),
            reverse=True,
        ),
        sorted(
            saved,
            # ``saved`` holds only annotations with a current revision.
            key=lambda a: (cast(AnnotationRevision, a.current_revision).created_at, a.pk),
            reverse=True,
        ),
    ):
        if pick:
            return pick[0]
    return None


def review_pair_get(
    *, series: Series, annotation_id: int | None = None, prediction_id: int | None = None
) -> ReviewPair:
    """The annotation and prediction to compare on ``series`` (caller checked access).

    Raises:
        NotFoundError: a named annotation or prediction is not on this series.
    """
    annotations = list(annotation_list_for_series(series=series))
    if annotation_id is not None:
        annotation = next((a for a in annotations if a.pk == annotation_id), None)
        if annotation is None:
            raise NotFoundError(_("Annotation not found."), {"annotation": annotation_id})
    else:
        annotation = _default_annotation(annotations)
    outputs = PredictionSeries.objects.filter(series=series, job__status=JobStatus.DONE)
    outputs = outputs.select_related("job__model", "job__etiology").order_by(
        "-job__finished_at", "-job_id"
    )
    if prediction_id is not None:
        prediction = outputs.filter(job_id=prediction_id).first()
        if prediction is None:
            raise NotFoundError(_("Prediction not found."), {"prediction": prediction_id})
    else:
        prediction = outputs.first()
    return ReviewPair(series=series, annotation=annotation, prediction=prediction)


def labels_by_value() -> dict[int, Label]:
    """The active labels by their mask value."""
    return {lab.value: lab for lab in labels_active()}


def case_review_numbers(*, pair: ReviewPair) -> dict[str, Any]:
    """The numbers of the case review page and ``GET /api/series/{id}/review/``."""
    labels = labels_by_value()
    names = {v: lab.name for v, lab in labels.items()}
    case = pair.series.case
    job = pair.prediction.job if pair.prediction else None
    confirmed = case.etiology.name if case.etiology_id and case.etiology else None
    implied = (
        implied_etiology(pair.annotation.current_revision.label_counts)
        if pair.annotation and pair.annotation.current_revision
        else None
    )
    out: dict[str, Any] = {
        "series": pair.series.pk,
        "case": case.pk,
        "annotation": pair.annotation.pk if pair.annotation else None,
        "prediction": job.pk if job else None,
        "model": job.model_id if job else None,
        "etiology": {
            "confirmed": confirmed,
            "case_confirmed": bool(case.confirmed),
            "annotation": names.get(implied) if implied else None,
            "predicted": job.etiology.name if job and job.etiology else None,
            "confidence": round(job.confidence, 4) if job and job.confidence is not None else None,
            "probabilities": job.probabilities if job else {},
        },
        "metrics": None,
    }
    if job is not None:
        out["etiology"]["correct"] = (
            out["etiology"]["predicted"] == confirmed if confirmed else None
        )
    ann = pair.annotation_mask()
    pred = pair.prediction_mask()
    if ann is not None and pred is not None:
        if ann.shape != pred.shape:
            raise ApplicationError(
                _("The prediction is not on this series' grid."),
                {"annotation": list(ann.shape), "prediction": list(pred.shape)},
            )
        out["metrics"] = case_numbers(
            annotation=np.asarray(ann),
            prediction=np.asarray(pred),
            spacing=pair.series.spacing,
            labels=names,
        )
    return out


def lesion_slices(pair: ReviewPair) -> tuple[list[int], int]:
    """Slices holding a lesion voxel in the annotation or the prediction, and the slice where
    they cover the most area together (the middle slice when neither has a lesion)."""
    area = np.zeros(int(pair.series.shape[0]), dtype=np.int64)
    for mask in (pair.annotation_mask(), pair.prediction_mask()):
        if mask is not None and mask.shape[0] == area.shape[0]:
            area += (np.asarray(mask) != 0).reshape(area.shape[0], -1).sum(axis=1)
    slices = [int(z) for z in np.flatnonzero(area)]
    return slices, (int(np.argmax(area)) if slices else int(area.shape[0]) // 2)


def prediction_flags(*, job_ids: list[int]) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            verb="prediction.flagged",
            target_type=PredictionJob._meta.label_lower,
            target_id__in=[str(i) for i in job_ids],
        ).order_by("-created_at")[:20]
    )


# --- model review (evaluation on the held-out split, cached) --------------------------------
def review_split(model: ModelVersion) -> str | None:
    """The split a model is reviewed on: test when the snapshot has one, else validation."""
    if model.dataset_id is None:
        return None
    splits = set(
        DatasetItem.objects.filter(snapshot_id=model.dataset_id).values_list("split", flat=True)
    )
    for split in (DatasetItem.Split.TEST, DatasetItem.Split.VAL):
        if split in splits:
            return str(split)
    return None


def model_review_key(model: ModelVersion, split: str) -> str:
    return storage.model_key(
        name=f"review/{model.pk}-{model.weights_sha256[:12]}-{model.dataset_id}-{split}.json"
    )


def model_review_get(*, model: ModelVersion, split: str) -> dict[str, Any] | None:
    """The cached review of ``model`` on ``split`` (None until computed)."""
    key = model_review_key(model, split)
    if not storage.exists(key):
        return None
    return cast(dict[str, Any], json.loads(storage.read_bytes(key)))
