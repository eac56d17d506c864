"""Pages of the annotation app: the slice editor, "My work" and the reviewers' queue."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.roles import NEUROLOGIST, REVIEWER, has_role
from cases.models import Case, Series
from cases.selectors import case_get_for_user, labels_active, series_list_for_case
from strokeaid_site.errors import ApplicationError

from . import selectors
from .hooks import prediction_overlay_url
from .models import Annotation

#: The editor shows these side by side, in this order (CT and others are not segmented).
EDITOR_KINDS = ("DWI", "ADC", "FLAIR")


def editor_series(case: Case) -> list[Series]:
    """One series per kind (the newest usable one), DWI, ADC, FLAIR; quarantined ones are
    never shown for annotation (they may carry burned-in annotations or be flagged)."""
    chosen: dict[str, Series] = {}
    for series in series_list_for_case(case=case):
        if series.quarantined or series.kind not in EDITOR_KINDS:
            continue
        if series.kind not in chosen or series.pk > chosen[series.kind].pk:
            chosen[series.kind] = series
    return [chosen[k] for k in EDITOR_KINDS if k in chosen]


def _annotation_json(annotation: Annotation | None) -> dict[str, Any] | None:
    if annotation is None:
        return None
    return {
        "id": annotation.pk,
        "state": annotation.state,
        "state_display": annotation.get_state_display(),
        "etag": annotation.etag,
        "revision": annotation.revision_count,
        "review_comment": annotation.review_comment,
        "reviewer": annotation.reviewer.get_username() if annotation.reviewer else None,
        "annotator": annotation.annotator.get_username() if annotation.annotator else None,
        "is_consensus": annotation.is_consensus,
    }


@login_required
def editor(request: HttpRequest, case_id: int) -> HttpResponse:
    """The slice editor of a case: DWI, ADC and FLAIR side by side with the lesion masks.

    ``?annotator=<user id>`` shows that annotator's masks read-only (review); without it a
    neurologist edits their own masks and other roles pick whose masks to view.
    """
    try:
        case = case_get_for_user(user=request.user, case_id=case_id)
    except ApplicationError as exc:
        raise Http404(str(exc)) from exc
    user = request.user
    can_annotate = has_role(user, NEUROLOGIST)
    is_reviewer = has_role(user, REVIEWER)
    all_annotations = list(selectors.annotation_list_for_case(case=case))
    annotator_param = request.GET.get("annotator", "")
    if annotator_param.isdigit() and int(annotator_param) != user.pk:
        viewed_id: int | None = int(annotator_param)
        mode = "review"
    elif can_annotate:
        viewed_id = user.pk
        mode = "edit"
    else:
        viewed_id = None
        mode = "view"
    by_series: dict[int, Annotation] = {
        a.series_id: a
        for a in all_annotations
        if not a.is_consensus and viewed_id is not None and a.annotator_id == viewed_id
    }
    series_config = []
    for series in editor_series(case):
        annotation = by_series.get(series.pk)
        mask_url = None
        if annotation is not None and annotation.revision_count:
            mask_url = reverse("annotation-api:annotation-mask-raw", args=[annotation.pk])
        volume = series.volume
        series_config.append(
            {
                "id": series.pk,
                "kind": series.kind,
                "shape": [int(n) for n in series.shape],
                "spacing": [float(s) for s in series.spacing],
                "affine": series.affine,
                "window": [float(series.window_center), float(series.window_width)],
                "range": [float(volume.min_value), float(volume.max_value)],
                "volume_url": reverse("cases-api:series-volume-raw", args=[series.pk]),
                "slice_url": reverse("cases-api:series-slice-raw", args=[series.pk, 0]).replace(
                    "/0.raw", "/{z}.raw"
                ),
                "save_url": reverse("annotation-api:mask-raw", args=[series.pk]),
                "mask_url": mask_url,
                "annotation": _annotation_json(annotation),
                "prediction_url": prediction_overlay_url(series=series, user=user),
            }
        )
    annotators: dict[int, str] = {}
    for a in all_annotations:
        if a.annotator is not None and a.revision_count:
            annotators[a.annotator_id] = a.annotator.get_username()  # type: ignore[index]
    labels = [
        {"value": lb.value, "name": lb.name, "title": lb.title, "color": lb.color}
        for lb in labels_active()
    ]
    config = {
        "case": {
            "id": case.pk,
            "code": case.code,
            "etiology": case.etiology.name if case.etiology else None,
            "confirmed": case.confirmed,
            "note": case.note,
            "status": case.status,
        },
        "mode": mode,
        "can_annotate": can_annotate and mode == "edit",
        "can_review": is_reviewer and mode == "review",
        "can_label": can_annotate,
        "viewed_annotator": viewed_id,
        "user": {"id": user.pk, "username": user.get_username()},
        "labels": labels,
        "series": series_config,
        "urls": {
            "labelling": reverse("annotation-api:labelling", args=[case.pk]),
            "annotation": reverse("annotation-api:detail", args=[0]).replace("/0/", "/{id}/"),
            "case": reverse("cases:detail", args=[case.pk]),
        },
    }
    return render(
        request,
        "annotation/editor.html",
        {
            "case": case,
            "config": config,
            "labels": labels,
            "series_config": series_config,
            "mode": mode,
            "annotators": sorted(annotators.items(), key=lambda kv: kv[1]),
            "viewed_id": viewed_id,
        },
    )


@login_required
def my_work(request: HttpRequest) -> HttpResponse:
    """An annotator's masks, returned work first (with the reviewer's comment)."""
    annotations = list(selectors.my_work_for_user(user=request.user)[:500])
    return render(request, "annotation/my_work.html", {"annotations": annotations})


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    """Submitted work waiting for a reviewer, oldest first (never the reviewer's own)."""
    annotations = list(selectors.review_queue_for_user(user=request.user)[:500])
    return render(
        request,
        "annotation/review_queue.html",
        {"annotations": annotations, "is_reviewer": has_role(request.user, REVIEWER)},
    )


def case_panel_context(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    """The case page's "Annotations" panel: every mask on the case with its state."""
    annotations = [a for a in selectors.annotation_list_for_case(case=case) if a.revision_count]
    return {"annotations": annotations, "editor_url": reverse("annotation:editor", args=[case.pk])}
