"""Pages of issue 5: case review (annotation vs prediction), annotator agreement, model review
and exports. Plots are drawn server-side with matplotlib (Agg, SVG)."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.auth import request_user
from accounts.roles import NEUROLOGIST, REVIEWER, has_role
from annotation.selectors import annotation_list_for_series
from cases.models import Case, Label
from cases.selectors import (
    labels_active,
    series_get_for_user,
    series_list_for_case,
)
from inference import selectors
from inference.exports.formats.base import pseudonym
from inference.models import DatasetItem
from inference.review import agreement as agreement_services
from inference.review import rendering as review_rendering
from inference.review import selectors as review_selectors
from inference.review import services as review_services
from inference.views import REVIEW_ROLES
from strokeaid_site.errors import ApplicationError


def _require(request: HttpRequest, *roles: str) -> None:
    if not has_role(request.user, *roles):
        raise PermissionDenied


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _series(request: HttpRequest, series_id: int) -> Any:
    try:
        return series_get_for_user(user=request.user, series_id=series_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


def _pair(request: HttpRequest, series: Any) -> review_selectors.ReviewPair:
    """The annotation and prediction the query string names (the defaults otherwise)."""
    return review_selectors.review_pair_get(
        series=series,
        annotation_id=_int(request.GET.get("annotation")),
        prediction_id=_int(request.GET.get("prediction")),
    )


# --- case review ----------------------------------------------------------------------------
@login_required
def series_review_page(request: HttpRequest, series_id: int) -> HttpResponse:
    """``/models/review/series/<id>/``: annotation | prediction | difference, scroll-synced."""
    _require(request, *REVIEW_ROLES)
    series = _series(request, series_id)
    try:
        pair = _pair(request, series)
        numbers = review_selectors.case_review_numbers(pair=pair)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    annotations = [a for a in annotation_list_for_series(series=series) if a.current_revision]
    predictions = selectors.prediction_outputs_for_series(series=series)
    job_ids = [p.job_id for p in predictions]
    query = {"annotation": numbers["annotation"] or "", "prediction": numbers["prediction"] or ""}
    labels = list(labels_active())
    titles = {lab.name: lab.title for lab in labels}
    etiology = numbers["etiology"]
    lesion_zs, start_z = review_selectors.lesion_slices(pair)
    return render(
        request,
        "inference/review/series.html",
        {
            "series": series,
            "case": series.case,
            "pair": pair,
            "numbers": numbers,
            "annotations": annotations,
            "predictions": predictions,
            "flags": review_selectors.prediction_flags(job_ids=job_ids),
            "labels": labels,
            "metric_rows": _metric_rows(numbers.get("metrics"), labels),
            "etiology_titles": {
                key: titles.get(etiology.get(key) or "", etiology.get(key))
                for key in ("confirmed", "annotation", "predicted")
            },
            "diff_colors": review_rendering.DIFF_COLORS,
            "other_series": [
                s for s in series_list_for_case(case=series.case) if s.pk != series.pk
            ],
            "slice_url": reverse("inference:review-slice", args=[series.pk, 0])[: -len("0.png")],
            "query": query,
            "lesion_slices": lesion_zs,
            "start_z": start_z,
            "window": [series.window_center, series.window_width],
            "can_accept": has_role(request.user, NEUROLOGIST) and pair.prediction is not None,
            "agreement_url": reverse("inference:review-agreement", args=[series.pk]),
        },
    )


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and abs(number) < 1e12 else None


def _metric_rows(metrics: dict[str, Any] | None, labels: list[Label]) -> dict[str, Any]:
    """Per-label rows of the comparison table with translated titles, and their means.

    The metrics keep the ML core's convention (Dice = 1 when a label is absent from both
    masks: nothing to miss). On the page that 1.000 reads as a perfect result, so such labels
    show "not applicable" and stay out of the means.
    """
    if not metrics:
        return {"rows": [], "mean": None}
    by_name = {lab.name: lab for lab in labels}
    rows = []
    for name, m in metrics["labels"].items():
        label = by_name.get(name)
        rows.append(
            {
                "name": name,
                "title": label.title if label is not None else name,
                "color": label.color if label is not None else "#888888",
                "present": bool(m.get("present")),
                "m": m,
            }
        )
    present = [r["m"] for r in rows if r["present"]]
    mean = None
    if present:
        mean = {key: sum(m[key] for m in present) / len(present) for key in ("dice", "iou")} | {
            "f1": sum(m["lesions"]["f1"] for m in present) / len(present),
            "n": len(present),
        }
    return {"rows": rows, "mean": mean}


@login_required
def series_review_slice(request: HttpRequest, series_id: int, z: int) -> HttpResponse:
    """One PNG slice of the review viewer (``?layer=image|annotation|prediction|difference``)."""
    _require(request, *REVIEW_ROLES)
    series = _series(request, series_id)
    try:
        pair = _pair(request, series)
        data = review_rendering.review_slice_png(
            pair=pair,
            z=z,
            layer=request.GET.get("layer", "difference"),
            label=_int(request.GET.get("label")),
            center=_float(request.GET.get("wc")),
            width=_float(request.GET.get("ww")),
        )
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


@login_required
@require_POST
def series_review_action(request: HttpRequest, series_id: int) -> HttpResponse:
    """Form fallback of the accept / flag buttons."""
    _require(request, *REVIEW_ROLES)
    series = _series(request, series_id)
    prediction_id = _int(request.POST.get("prediction"))
    try:
        if request.POST.get("action") == "accept":
            review_services.prediction_accept_as_draft(
                user=request_user(request), series=series, prediction_id=prediction_id
            )
            messages.success(request, _("The prediction is now your draft annotation."))
            return HttpResponseRedirect(reverse("annotation:editor", args=[series.case_id]))
        review_services.prediction_flag(
            user=request_user(request),
            series=series,
            prediction_id=prediction_id,
            comment=request.POST.get("comment", ""),
        )
        messages.success(request, _("The prediction was flagged."))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("inference:review-series", args=[series.pk]))


# --- agreement ------------------------------------------------------------------------------
def _with_usernames(data: dict[str, Any], *, series: Any) -> dict[str, Any]:
    """The agreement with annotators' user names instead of their pseudonyms: a reviewer who
    adjudicates must know whose mask is whose (pseudonyms stay in the API and in exports)."""
    names = {
        pseudonym(a.annotator_id, consensus=False): a.annotator.get_username()
        for a in annotation_list_for_series(series=series)
        if a.annotator is not None and not a.is_consensus
    }
    for row in data["annotations"]:
        row["annotator"] = names.get(row["annotator"], row["annotator"])
    for row in [*data["pairwise"], *data["kappa"]["cohen"]]:
        row["a"] = names.get(row["a"], row["a"])
        row["b"] = names.get(row["b"], row["b"])
    return data


@login_required
def series_agreement_page(request: HttpRequest, series_id: int) -> HttpResponse:
    """``/models/review/series/<id>/agreement/``: pairwise Dice, kappas, adjudication."""
    _require(request, *REVIEW_ROLES)
    series = _series(request, series_id)
    if request.method == "POST":
        _require(request, REVIEWER)
        try:
            agreement_services.consensus_create(
                user=request_user(request),
                series=series,
                method=request.POST.get("method", ""),
                annotation_id=_int(request.POST.get("annotation")),
            )
            messages.success(request, _("The consensus annotation was saved."))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(request.path)
    data = _with_usernames(agreement_services.series_agreement(series=series), series=series)
    return render(
        request,
        "inference/review/agreement.html",
        {
            "series": series,
            "case": series.case,
            "agreement": data,
            "labels": [lab.name for lab in labels_active()],
            "can_adjudicate": has_role(request.user, REVIEWER),
        },
    )


# --- model review ---------------------------------------------------------------------------
@login_required
def model_review_page(request: HttpRequest, model_id: int) -> HttpResponse:
    """``/models/<id>/review/``: per-case table, confusion, Dice distribution, calibration."""
    _require(request, *REVIEW_ROLES)
    try:
        model = selectors.model_get_for_user(user=request.user, model_id=model_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    split = request.GET.get("split") or review_selectors.review_split(model)
    if request.method == "POST":
        if split is None:
            messages.error(request, _("This model has no validation or test split."))
        else:
            review_services.model_review_request(
                model=model, split=split, user=request_user(request)
            )
            messages.info(request, _("The evaluation is running; reload this page shortly."))
        return HttpResponseRedirect(request.path)
    review = review_selectors.model_review_get(model=model, split=split) if split else None
    order = request.GET.get("order", "dice")
    rows = [r for r in (review or {}).get("cases", []) if r.get("status") == "done"]
    if order == "etiology":
        rows.sort(key=lambda r: (-(r.get("etiology_error") or 0.0), r["code"]))
    else:
        rows.sort(key=lambda r: (r.get("lesion_dice", 0.0), r["code"]))
    # Etiologies and the split in the reader's language (the review stores label names).
    titles = {lab.name: lab.title for lab in labels_active()}
    for r in rows:
        r["etiology_title"] = titles.get(r.get("etiology") or "", r.get("etiology"))
        r["predicted_title"] = titles.get(r.get("predicted") or "", r.get("predicted"))
    confusion = []
    if review and review.get("confusion"):
        for name, row in zip(review["labels"], review["confusion"], strict=True):
            confusion.append({"label": titles.get(name, name), "counts": row})
    split_title = DatasetItem.Split(split).label if split in DatasetItem.Split.values else split
    methods = _three_answers(model, titles)
    return render(
        request,
        "inference/review/model.html",
        {
            "model": model,
            "split": split,
            "split_title": split_title,
            "review": review,
            "rows": rows,
            "order": order,
            "confusion": confusion,
            "methods": methods,
            "pending": [r for r in (review or {}).get("cases", []) if r.get("status") != "done"],
            "plots": {
                name: reverse("inference:model-review-plot", args=[model.pk, name])
                + f"?split={split}"
                for name in ("confusion", "dice", "calibration")
            }
            if review
            else {},
        },
    )


#: The answers compared on the model review page, in the order they are read.
_METHOD_TITLES = {
    "segmentation_vote": gettext_lazy("Segmentation vote"),
    "toast_rules": gettext_lazy("TOAST rules"),
    "combined": gettext_lazy("Case model (pattern + work-up)"),
    "combined_imaging_only": gettext_lazy("Case model, imaging only (work-up withheld)"),
}


def _three_answers(model: Any, titles: dict[str, str]) -> dict[str, Any] | None:
    """The answers' macro-F1 (bootstrap 95 % interval), accuracy and confusion matrices on
    the run's test split, as registered with the case model (None without one)."""
    metrics = (model.case_model or {}).get("metrics") or {}
    scores = metrics.get("macro_f1")
    if not scores:
        return None
    classes = metrics.get("classes", [])
    rows = []
    for key, title in _METHOD_TITLES.items():
        score = scores.get(key)
        if score is None:
            continue
        confusion = (metrics.get("confusion") or {}).get(key, [])
        rows.append(
            {
                "key": key,
                "title": title,
                "f1": score["f1"],
                "low": score["low"],
                "high": score["high"],
                "accuracy": score.get("accuracy"),
                "n": score["n"],
                "confusion": [
                    {"label": titles.get(name, name), "counts": counts}
                    for name, counts in zip(classes, confusion, strict=False)
                ],
            }
        )
    return {
        "rows": rows,
        "classes": [titles.get(c, c) for c in classes],
        "feature_gap": metrics.get("feature_gap"),
        "test_cases": metrics.get("test_cases"),
    }


@login_required
def model_review_plot(request: HttpRequest, model_id: int, name: str) -> HttpResponse:
    """An SVG plot of the cached model review."""
    _require(request, *REVIEW_ROLES)
    try:
        model = selectors.model_get_for_user(user=request.user, model_id=model_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    split = request.GET.get("split") or review_selectors.review_split(model)
    review = review_selectors.model_review_get(model=model, split=split) if split else None
    if review is None or name not in ("confusion", "dice", "calibration"):
        raise Http404(_("No review has been computed for this model."))
    colors = selectors.label_colors(label_set=model.label_set)
    return HttpResponse(_plot_svg(name, review, colors), content_type="image/svg+xml")


def _plot_svg(name: str, review: dict[str, Any], colors: dict[str, str]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    labels = review["labels"]
    if name == "confusion":
        import numpy as np

        matrix = np.asarray(review["confusion"] or [[0] * (len(labels) + 1)] * len(labels))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(labels) + 1), [*labels, _("none")], rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel(_("Predicted etiology"))
        ax.set_ylabel(_("Confirmed etiology"))
    elif name == "dice":
        data = [review["dice"].get(lab) or [float("nan")] for lab in labels]
        parts = ax.boxplot(data, patch_artist=True)
        for patch, lab in zip(parts["boxes"], labels, strict=True):
            patch.set_facecolor(colors.get(lab, "#888888"))
        for i, values in enumerate(data, start=1):
            ax.plot([i] * len(values), values, ".", color="black", alpha=0.6)
        ax.set_xticks(range(1, len(labels) + 1), labels, rotation=45, ha="right")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(_("Dice"))
    else:
        bins = review["calibration"]["bins"]
        ax.plot([0, 1], [0, 1], "--", color="grey", label=_("perfect calibration"))
        xs = [(b["lower"] + b["upper"]) / 2 for b in bins]
        ax.bar(
            xs,
            [b["accuracy"] if b["count"] else 0 for b in bins],
            width=0.09,
            color="#1e88e5",
            alpha=0.7,
            label=_("accuracy"),
        )
        ax.plot(
            [b["mean_confidence"] for b in bins if b["count"]],
            [b["accuracy"] for b in bins if b["count"]],
            "o",
            color="black",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel(_("Confidence"))
        ax.set_ylabel(_("Accuracy"))
        ax.set_title(_("ECE %(ece).3f") % {"ece": review["calibration"]["ece"]}, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    out = io.BytesIO()
    fig.savefig(out, format="svg")
    return out.getvalue()


# --- registration ---------------------------------------------------------------------------
def case_review_link(request: HttpRequest, case: Case) -> str | None:
    """The case page's "Review" action: the reference series' review page."""
    if not has_role(request.user, *REVIEW_ROLES):
        return None
    series = list(series_list_for_case(case=case))
    for kind in ("DWI", "FLAIR", "ADC"):
        for s in series:
            if s.kind == kind:
                return reverse("inference:review-series", args=[s.pk])
    return None
