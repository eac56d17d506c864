"""Pages of the annotation app: the slice editor, "My work" and the reviewers' queue."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.roles import NEUROLOGIST, REVIEWER, has_role
from cases.models import Case, Series
from cases.selectors import case_get_for_user, labels_active, series_list_for_case
from strokeaid_site.errors import ApplicationError

from . import selectors
from .hooks import prediction_overlay
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


#: ``?annotator=consensus`` shows the series' adjudicated (consensus) masks.
CONSENSUS = "consensus"


def _viewed_key(annotation: Annotation) -> int | str | None:
    return CONSENSUS if annotation.is_consensus else annotation.annotator_id


def _editor_default_view(
    *, user: Any, is_reviewer: bool, annotations: list[Annotation]
) -> int | str | None:
    """Whose masks to show a user who did not choose and has none of their own.

    The most relevant first: for a reviewer, the submitted work awaiting review (oldest
    submission, as in the queue); then the approved masks (the consensus before an
    annotator's, then the most recently reviewed); then the latest saved ones.
    """
    saved = [a for a in annotations if a.revision_count and _viewed_key(a) != user.pk]
    if is_reviewer:
        waiting = [a for a in saved if a.state == Annotation.State.SUBMITTED and not a.is_consensus]
        if waiting:
            first = min(waiting, key=lambda a: (a.submitted_at is None, a.submitted_at, a.pk))
            return _viewed_key(first)
    approved = [a for a in saved if a.state == Annotation.State.APPROVED]
    if approved:
        best = max(
            approved, key=lambda a: (a.is_consensus, a.reviewed_at is not None, a.reviewed_at, a.pk)
        )
        return _viewed_key(best)
    if saved:
        return _viewed_key(max(saved, key=lambda a: (a.updated_at, a.pk)))
    return None


def _editor_view_choice(
    *,
    annotator_param: str,
    user: Any,
    can_annotate: bool,
    is_reviewer: bool,
    annotations: list[Annotation],
) -> tuple[int | str | None, str]:
    """(whose masks, mode) for the editor: ``edit`` own masks, ``review`` someone else's
    (read-only; reviewers act on submitted ones), ``view`` nothing chosen.

    A neurologist who is not a reviewer always starts on their own masks, even empty ones:
    annotators draw independently (the agreement statistics assume it), so another's mask is
    shown only when they pick it under "Masks by".
    """
    if annotator_param == CONSENSUS:
        return CONSENSUS, "review"
    if annotator_param.isdigit() and int(annotator_param) != user.pk:
        return int(annotator_param), "review"
    if can_annotate and (
        annotator_param.isdigit()
        or not is_reviewer
        or any(a.annotator_id == user.pk and not a.is_consensus for a in annotations)
    ):
        return user.pk, "edit"
    default = _editor_default_view(user=user, is_reviewer=is_reviewer, annotations=annotations)
    if default is not None:
        return default, "review"
    if can_annotate:
        return user.pk, "edit"
    return None, "view"


def _series_config(
    series: Series, *, annotation: Annotation | None, overlay: dict[str, Any] | None
) -> dict[str, Any]:
    """What the editor script needs of one series: grid, window, and where to load and save."""
    mask_url = None
    if annotation is not None and annotation.revision_count:
        mask_url = reverse("annotation-api:annotation-mask-raw", args=[annotation.pk])
    volume = series.volume
    return {
        "id": series.pk,
        "kind": series.kind,
        "shape": [int(n) for n in series.shape],
        "spacing": [float(s) for s in series.spacing],
        "affine": series.affine,
        "display": series.display.as_dict(),
        "window": [float(series.window_center), float(series.window_width)],
        "range": [float(volume.min_value), float(volume.max_value)],
        "volume_url": reverse("cases-api:series-volume-raw", args=[series.pk]),
        "slice_url": reverse("cases-api:series-slice-raw", args=[series.pk, 0]).replace(
            "/0.raw", "/{z}.raw"
        ),
        "save_url": reverse("annotation-api:mask-raw", args=[series.pk]),
        "mask_url": mask_url,
        "annotation": _annotation_json(annotation),
        "prediction_url": overlay["url"] if overlay else None,
    }


def _editor_series_config(
    *, case: Case, user: Any, by_series: dict[int, Annotation]
) -> tuple[list[dict[str, Any]], Any]:
    """The configuration of every series the editor shows, and the summary of the newest
    prediction (from the first series that has one)."""
    configs = []
    prediction_summary = None
    for series in editor_series(case):
        overlay = prediction_overlay(series=series, user=user)
        if overlay and prediction_summary is None:
            prediction_summary = overlay["summary"]
        configs.append(_series_config(series, annotation=by_series.get(series.pk), overlay=overlay))
    return configs, prediction_summary


def _mask_owners(annotations: list[Annotation]) -> list[tuple[int | str, str]]:
    """The "Masks by" choices: the consensus first, then annotators by name."""
    owners: dict[int | str, str] = {}
    for a in annotations:
        if a.is_consensus and a.revision_count:
            owners[CONSENSUS] = str(_("Consensus"))
        elif a.annotator is not None and a.revision_count:
            owners[a.annotator.pk] = a.annotator.get_username()
    return sorted(owners.items(), key=lambda kv: (kv[0] != CONSENSUS, kv[1]))


@login_required
def editor(request: HttpRequest, case_id: int) -> HttpResponse:
    """The slice editor of a case: DWI, ADC and FLAIR side by side with the lesion masks.

    ``?annotator=<user id>`` (or ``consensus``) shows those masks read-only (review); without
    it a neurologist edits their own masks, and a reviewer or another role sees the most
    relevant masks (see ``_editor_default_view``).
    """
    try:
        case = case_get_for_user(user=request.user, case_id=case_id)
    except ApplicationError as exc:
        raise Http404(str(exc)) from exc
    user = request.user
    can_annotate = has_role(user, NEUROLOGIST)
    is_reviewer = has_role(user, REVIEWER)
    all_annotations = list(selectors.annotation_list_for_case(case=case))
    viewed_id, mode = _editor_view_choice(
        annotator_param=request.GET.get("annotator", ""),
        user=user,
        can_annotate=can_annotate,
        is_reviewer=is_reviewer,
        annotations=all_annotations,
    )
    by_series: dict[int, Annotation] = {
        a.series_id: a
        for a in all_annotations
        if viewed_id is not None and _viewed_key(a) == viewed_id
    }
    series_config, prediction_summary = _editor_series_config(
        case=case, user=user, by_series=by_series
    )
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
        # "Open in the editor" from a prediction: start with the prediction shown, on the
        # slice where it is largest.
        "show_prediction": request.GET.get("prediction") == "1",
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
            "prediction_summary": prediction_summary,
            "series_config": series_config,
            "mode": mode,
            "annotators": _mask_owners(all_annotations),
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
