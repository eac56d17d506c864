"""Review of model output against annotations: per-case numbers, difference overlays, model
evaluation on its held-out split, and the reviewer's actions (accept as draft, flag).

Conventions follow ``inference.ml.metrics`` (no NaN on a page): Dice/IoU of a label absent
from both masks is 1.0; lesion-wise F1 with no lesion in either mask is 1.0. Lesions are 3-D
connected components with 26-connectivity. Volumes are in ml (voxel volume = product of the
spacing in mm / 1000).

Difference classes (``difference_classes``), per voxel:

==  ===============  ===============================================================
0   none             background in both
1   agree            lesion in both with the same label (drawn in the label's colour)
2   annotator only   lesion in the annotation only (missed by the model)
3   model only       lesion in the prediction only (false positive of the model)
4   label differs    lesion in both, with different labels (etiology disagreement)
==  ===============  ===============================================================

With ``label`` given, classes are for that label alone (``mask == label``), so class 4 does
not occur.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image

from accounts.roles import NEUROLOGIST, has_role
from annotation.models import Annotation, AnnotationRevision
from annotation.selectors import annotation_list_for_series, mask_array
from annotation.services import annotation_import_mask
from cases import storage
from cases.models import AuditEvent, Label, Series
from cases.orientation import to_display
from cases.rendering import volume_open, window_to_uint8
from cases.selectors import labels_active
from cases.services.audit import audit_record
from inference.ml import metrics
from inference.models import DatasetItem, JobStatus, ModelVersion, PredictionJob, PredictionSeries
from inference.services.agreement import implied_etiology
from inference.services.arrays import mask_to_reference
from inference.services.prediction import (
    prediction_execute,
    prediction_label_volume,
    prediction_request,
)
from inference.services.summary import summary_of
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError

logger = logging.getLogger(__name__)

NONE, AGREE, ANNOTATOR_ONLY, MODEL_ONLY, LABEL_DIFFERS = 0, 1, 2, 3, 4
#: Colours of the difference overlay (agree uses the label's own colour). Cyan rather than
#: yellow for "annotator only": the lacunar label is already yellow.
DIFF_COLORS = {ANNOTATOR_ONLY: "#00e5ff", MODEL_ONLY: "#ff00ff", LABEL_DIFFERS: "#ffffff"}
LAYERS = ("image", "annotation", "prediction", "difference")


# --- pure parts -----------------------------------------------------------------------------
def difference_classes(
    annotation: npt.NDArray[Any], prediction: npt.NDArray[Any], *, label: int | None = None
) -> npt.NDArray[np.uint8]:
    """Voxel classes of the difference overlay (see the module docstring)."""
    a = np.asarray(annotation)
    p = np.asarray(prediction)
    if a.shape != p.shape:
        raise ValueError("annotation and prediction must have the same shape")
    if label is not None:
        a_in, p_in = a == label, p == label
        same = a_in & p_in
    else:
        a_in, p_in = a != 0, p != 0
        same = a_in & p_in & (a == p)
    out = np.zeros(a.shape, dtype=np.uint8)
    out[same] = AGREE
    out[a_in & ~p_in] = ANNOTATOR_ONLY
    out[p_in & ~a_in] = MODEL_ONLY
    if label is None:
        out[a_in & p_in & (a != p)] = LABEL_DIFFERS
    return out


def case_numbers(
    *,
    annotation: npt.NDArray[Any],
    prediction: npt.NDArray[Any],
    spacing: Any,
    labels: dict[int, str],
) -> dict[str, Any]:
    """Per-case numbers: Dice/IoU per label, lesion-wise detection, volumes per label (ml)."""
    counts = metrics.overlap_counts(prediction, annotation, list(labels))
    per_label = {}
    for value, name in labels.items():
        c = counts[value]
        det = metrics.lesion_detection(prediction, annotation, label=value)
        per_label[name] = {
            "dice": round(c.dice, 4),
            "iou": round(c.iou, 4),
            "present": bool(c.tp + c.fp + c.fn),
            "annotation_ml": round(metrics.volume_ml(annotation, spacing, value), 3),
            "prediction_ml": round(metrics.volume_ml(prediction, spacing, value), 3),
            "lesions": {
                "annotation": det.n_ref,
                "prediction": det.n_pred,
                "f1": round(det.f1, 4),
            },
        }
    det = metrics.lesion_detection(prediction, annotation)
    return {
        "labels": per_label,
        "lesion_dice": round(metrics.binary_dice(prediction, annotation), 4),
        "lesion_iou": round(
            metrics.overlap_counts(prediction != 0, annotation != 0, [1])[1].iou, 4
        ),
        "detection": {
            "annotation_lesions": det.n_ref,
            "predicted_lesions": det.n_pred,
            "true_positives": det.tp_pred,
            "false_positives": det.false_positives,
            "detected": det.detected_ref,
            "missed": det.missed,
            "precision": round(det.precision, 4),
            "recall": round(det.recall, 4),
            "f1": round(det.f1, 4),
        },
        "total_ml": {
            "annotation": round(metrics.volume_ml(annotation, spacing), 3),
            "prediction": round(metrics.volume_ml(prediction, spacing), 3),
        },
    }


def _hex_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def overlay_png(
    base: npt.NDArray[np.uint8],
    *,
    classes: npt.NDArray[Any] | None,
    colors: dict[int, str],
    alpha: float = 0.55,
) -> bytes:
    """A greyscale slice with ``classes`` (0 = transparent) blended in ``colors``, as PNG."""
    rgb = np.repeat(base[:, :, None], 3, axis=2).astype(np.float32)
    if classes is not None:
        for value, color in colors.items():
            sel = classes == value
            if sel.any():
                rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.asarray(
                    _hex_rgb(color), dtype=np.float32
                )
    image = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


# --- rows to arrays -------------------------------------------------------------------------
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


def _labels() -> dict[int, Label]:
    return {lab.value: lab for lab in labels_active()}


def case_review_numbers(*, pair: ReviewPair) -> dict[str, Any]:
    """The numbers of the case review page and ``GET /api/series/{id}/review/``."""
    labels = _labels()
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


def review_slice_png(
    *,
    pair: ReviewPair,
    z: int,
    layer: str,
    label: int | None = None,
    center: float | None = None,
    width: float | None = None,
) -> bytes:
    """One slice of the review viewer: the image, or the image with an overlay layer, at the
    series' window or the one given."""
    series = pair.series
    if not 0 <= z < int(series.shape[0]):
        raise NotFoundError(_("No such slice."), {"z": z})
    if layer not in LAYERS:
        raise ApplicationError(_("Unknown layer."), {"layer": layer, "allowed": list(LAYERS)})
    handle = volume_open(series)
    # Shown in the radiological convention, like the editor (cases.orientation).
    display = series.display

    def shown(plane: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.ascontiguousarray(to_display(np.asarray(plane), display))

    center = series.window_center if center is None else center
    width = series.window_width if width is None or width <= 0 else width
    base = shown(window_to_uint8(handle.array[z], center, width))
    labels = _labels()
    label_colors = {v: lab.color for v, lab in labels.items()}
    ann = pair.annotation_mask()
    pred = pair.prediction_mask()
    if layer == "image":
        return overlay_png(base, classes=None, colors={})
    if layer == "annotation":
        return overlay_png(
            base, classes=None if ann is None else shown(ann[z]), colors=label_colors
        )
    if layer == "prediction":
        return overlay_png(
            base, classes=None if pred is None else shown(pred[z]), colors=label_colors
        )
    if ann is None or pred is None:
        return overlay_png(base, classes=None, colors={})
    a, p = shown(ann[z]), shown(pred[z])
    classes = difference_classes(a, p, label=label)
    # "Agree" voxels take their label's colour: encode them as 10 + label value.
    painted = classes.astype(np.int16)
    agree = classes == AGREE
    painted[agree] = 10 + a[agree].astype(np.int16)
    colors = {10 + v: c for v, c in label_colors.items()}
    colors.update(DIFF_COLORS)
    return overlay_png(base, classes=painted, colors=colors, alpha=0.65)


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


def _cache_key(model: ModelVersion, split: str) -> str:
    return storage.model_key(
        name=f"review/{model.pk}-{model.weights_sha256[:12]}-{model.dataset_id}-{split}.json"
    )


def model_review_get(*, model: ModelVersion, split: str) -> dict[str, Any] | None:
    """The cached review of ``model`` on ``split`` (None until computed)."""
    key = _cache_key(model, split)
    if not storage.exists(key):
        return None
    return cast(dict[str, Any], json.loads(storage.read_bytes(key)))


def evaluation_rows(
    *, model: ModelVersion, items: list[DatasetItem], user: User | None
) -> list[dict[str, Any]]:
    """Per-case numbers of ``model`` on snapshot ``items`` (their approved masks as truth):
    done predictions of this model are reused, missing ones are run now."""
    labels = {v: lab.name for v, lab in _labels().items()}
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
    labels = {v: lab.name for v, lab in _labels().items()}
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
    storage.write_bytes(_cache_key(model, split), json.dumps(result).encode())
    return result


def model_review_request(*, model: ModelVersion, split: str, user: User) -> None:
    """Queues the evaluation of ``model`` on ``split`` (after commit)."""
    from django.db import transaction
    from django_q.tasks import async_task

    model_id, user_id = model.pk, user.pk
    transaction.on_commit(
        lambda: async_task(
            "inference.export_tasks.model_review_compute",
            model_id,
            split,
            user_id,
            task_name=f"model-review-{model_id}-{split}",
            group="review",
        )
    )
