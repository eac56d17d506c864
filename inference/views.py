"""Pages of the inference app: model registry with curves, training-run progress, predictions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.auth import request_user
from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER, has_role, user_roles
from cases.models import Case, Label
from cases.selectors import case_get_for_user
from inference import selectors, services
from inference.models import JobStatus, PredictionJob
from inference.services import promotion
from inference.services.explorer import explorer_can_use, explorer_rows, explorer_run
from inference.services.prediction import prediction_can_request, prediction_notes_display
from inference.services.report import prediction_report
from strokeaid_site.errors import ApplicationError

#: Default epochs of the training form: about 10 minutes for the phantom set on a CPU, and
#: enough for the demo model to find lesions; a GPU server can take many more.
DEFAULT_EPOCHS = 10

#: Roles that open a model's review page and the annotation/prediction comparison.
REVIEW_ROLES = (NEUROLOGIST, REVIEWER, DATA_MANAGER)


def job_status_labels() -> dict[str, str]:
    """``{status: translated label}`` of jobs, for pages whose JS updates status cells."""
    return {str(value): str(label) for value, label in JobStatus.choices}


def _require_any_role(request: HttpRequest) -> None:
    if not user_roles(request.user):
        raise PermissionDenied


def _curve(run: Any) -> dict[str, Any]:
    history = run.history or []
    return {
        "epochs": [h.get("epoch") for h in history],
        "loss": [h.get("train_loss") for h in history],
        "dice": [(h.get("metrics") or {}).get("dice_mean") for h in history],
        "lesion_f1": [(h.get("metrics") or {}).get("lesion_f1") for h in history],
        "macro_f1": [(h.get("metrics") or {}).get("case_macro_f1") for h in history],
    }


@login_required
def models_page(request: HttpRequest) -> HttpResponse:
    """``/models/``: versions with metrics and training curves, recent runs, start form."""
    _require_any_role(request)
    models = list(selectors.model_list_for_user(user=request.user)[:50])
    runs = list(selectors.training_run_list_for_user(user=request.user)[:20])
    curves = {str(m.pk): _curve(m.run) for m in models if m.run is not None}
    return render(
        request,
        "inference/models.html",
        {
            "models": models,
            "runs": runs,
            "curves": curves,
            "can_manage": has_role(request.user, DATA_MANAGER),
            "can_review": has_role(request.user, *REVIEW_ROLES),
            "default_epochs": DEFAULT_EPOCHS,
        },
    )


@login_required
def training_run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    """``/models/runs/<id>/``: live progress over ``ws/jobs/training/<id>/``."""
    try:
        run = selectors.training_run_get_for_user(user=request.user, run_id=run_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    return render(
        request,
        "inference/training_run.html",
        {
            "run": run,
            "curve": _curve(run),
            "api_url": reverse("inference-api:training-run-detail", args=[run.pk]),
            "status_labels": job_status_labels(),
        },
    )


@login_required
@require_POST
def training_run_start_view(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, DATA_MANAGER):
        raise PermissionDenied
    try:
        epochs = int(request.POST.get("epochs") or DEFAULT_EPOCHS)
        case_ids = selectors.case_ids_resolve(
            user=request.user, text=request.POST.get("cases") or ""
        )
        params: dict[str, Any] = {}
        if request.POST.get("batch_size"):
            params["batch_size"] = int(request.POST["batch_size"])
        if request.POST.get("image_size"):
            size = int(request.POST["image_size"])
            params["image_size"] = [size, size]
        run, created = services.training_run_start(
            user=request_user(request),
            epochs=epochs,
            case_ids=case_ids,
            params=params,
            activate=bool(request.POST.get("activate")),
        )
    except (ValueError, ApplicationError) as exc:
        messages.error(request, getattr(exc, "message", None) or _("Invalid input."))
        return HttpResponseRedirect(reverse("inference:models"))
    if not created:
        messages.info(request, _("A training run is already going; showing it."))
    return HttpResponseRedirect(reverse("inference:training-run", args=[run.pk]))


@login_required
def model_activate_view(request: HttpRequest, model_id: int) -> HttpResponse:
    """Activation as a decision: the candidate against the active model on their shared
    held-out cases, then a confirmation (with a reason when the candidate is worse)."""
    if not has_role(request.user, DATA_MANAGER):
        raise PermissionDenied
    model = selectors.model_get_for_user(user=request.user, model_id=model_id)
    active = selectors.model_active_get()
    if active is not None and active.pk == model.pk:
        messages.info(request, _("Model %(name)s is already active.") % {"name": model.name})
        return HttpResponseRedirect(reverse("inference:models"))
    comparison = None
    if active is not None:
        comparison = promotion.comparison_get(candidate=model, active=active)
        if comparison is None and cache.add(f"promotion-queued-{model.pk}-{active.pk}", 1, 600):
            promotion.comparison_request(candidate=model, active=active, user=request_user(request))
    if request.method == "POST":
        if active is not None and comparison is None:
            messages.error(request, _("The comparison is still being computed."))
            return HttpResponseRedirect(request.path)
        try:
            services.model_activate(
                user=request_user(request),
                model=model,
                override_reason=request.POST.get("override_reason", ""),
                comparison=comparison,
            )
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(request.path)
        messages.success(request, _("Model %(name)s is now active.") % {"name": model.name})
        return HttpResponseRedirect(reverse("inference:models"))
    rows = []
    if comparison is not None:
        titles = {
            "dice": _("Lesion Dice"),
            "lesion_f1": _("Lesion-wise F1"),
            "macro_f1": _("Etiology macro-F1"),
        }
        for key, title in titles.items():
            rows.append(
                {
                    "key": key,
                    "title": title,
                    "candidate": comparison["candidate_numbers"][key],
                    "active": comparison["active_numbers"][key],
                    "worse": key in comparison["worse_on"],
                }
            )
    return render(
        request,
        "inference/model_activate.html",
        {
            "model": model,
            "active": active,
            "comparison": comparison,
            "rows": rows,
            "pending": active is not None and comparison is None,
            "small_n": promotion.SMALL_N,
        },
    )


def case_predictions_panel_context(request: HttpRequest, case: Case) -> dict[str, Any] | None:
    """Context of the case page's predictions panel (None hides it for users without roles)."""
    if not user_roles(request.user):
        return None
    jobs = list(selectors.prediction_list_for_case(user=request.user, case_id=case.pk)[:5])
    can_compare = has_role(request.user, *REVIEW_ROLES)
    labels = selectors.labels_by_set_and_name(jobs)
    return {
        "predictions": [
            _prediction_row(job, labels=labels, can_compare=can_compare) for job in jobs
        ],
        "active_model": selectors.model_active_get(),
        "can_predict": prediction_can_request(user=request_user(request), case=case),
        "post_url": reverse("inference-api:case-prediction-list", args=[case.pk]),
        "editor_url": reverse("annotation:editor", args=[case.pk]) + "?prediction=1",
        "status_labels": job_status_labels(),
    }


def _prediction_row(
    job: PredictionJob, *, labels: dict[tuple[int, str], Label], can_compare: bool
) -> dict[str, Any]:
    """One prediction of the panel: status, etiology, volumes per label, notes, links."""
    lesions = job.lesions or {}
    volumes = []
    if job.volumes_ml:
        for name, ml in job.volumes_ml.items():
            if not ml:
                continue  # labels the model did not find: the total and count say enough
            label = labels.get((job.model.label_set_id, name))
            volumes.append(
                {
                    "title": label.title if label is not None else name,
                    "color": label.color if label is not None else "#888888",
                    "ml": ml,
                }
            )
    compare_url = None
    if can_compare and job.status == JobStatus.DONE and job.reference_series_id:
        compare_url = (
            reverse("inference:review-series", args=[job.reference_series_id])
            + f"?prediction={job.pk}"
        )
    return {
        "job": job,
        "active": job.status in (JobStatus.QUEUED, JobStatus.RUNNING),
        "lesion_count": lesions.get("count"),
        "total_ml": lesions.get("total_ml"),
        "volumes": volumes,
        "notes": prediction_notes_display(job.notes),
        "compare_url": compare_url,
        "detail_url": reverse("inference-api:prediction-detail", args=[job.pk]),
    }


@login_required
def case_predictions_page(request: HttpRequest, case_id: int) -> HttpResponse:
    """``/models/cases/<id>/predictions/``: the panel as a page (and its POST fallback)."""
    _require_any_role(request)
    try:
        case = case_get_for_user(user=request.user, case_id=case_id)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc
    if request.method == "POST":
        try:
            services.prediction_request(user=request_user(request), case=case)
            messages.success(request, _("Prediction queued."))
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return HttpResponseRedirect(request.path)
    context = case_predictions_panel_context(request, case) or {}
    return render(request, "inference/case_predictions.html", {"case": case, **context})


@login_required
def prediction_report_page(request: HttpRequest, prediction_id: int) -> HttpResponse:
    """The clinician's report of one prediction: the answers side by side, why, the lesion
    pattern, the work-up and its gaps, and the report picture."""
    job = selectors.prediction_get_for_user(user=request.user, prediction_id=prediction_id)
    context = prediction_report(job)
    context["png_url"] = reverse("inference-api:prediction-report-png", args=[job.pk])
    context["case_url"] = reverse("cases:detail", args=[job.case_id])
    return render(request, "inference/prediction_report.html", context)


@login_required
def explorer_page(request: HttpRequest) -> HttpResponse:
    """The cryptogenic explorer: the mechanism the active model suggests for each case whose
    etiology is undetermined, sortable, with the distribution; POST runs the model on all."""
    if not explorer_can_use(user=request.user):
        raise PermissionDenied(
            _("Only neurologists, data managers and reviewers use the explorer.")
        )
    if request.method == "POST":
        queued = explorer_run(user=request_user(request))
        messages.info(
            request,
            _("%(n)d predictions queued; this page fills in as they finish.") % {"n": queued},
        )
        return HttpResponseRedirect(reverse("inference:explorer"))
    order = request.GET.get("order") or "confidence"
    data = explorer_rows(user=request.user, order=order)
    titles = data["titles"]
    data["distribution_rows"] = [
        {
            "name": name,
            "title": titles.get(name, name),
            "count": count,
            "mean_confidence": data["mean_confidence"].get(name, 0.0),
            "share": count / max(1, data["predicted"]),
        }
        for name, count in sorted(data["distribution"].items(), key=lambda kv: -kv[1])
    ]
    data["order"] = order
    data["active_model"] = selectors.model_active_get()
    return render(request, "inference/explorer.html", data)
