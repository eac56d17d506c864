"""The prediction report (page and PNG) in the reader's language."""

from __future__ import annotations

from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Label
from cases.orientation import display_aspect, to_display
from etiology.reasoning.workup import FIELDS
from inference.models import JobStatus, PredictionJob
from inference.report import ReportContent, render_report_png
from inference.services.prediction import prediction_label_volume
from inference.services.reasoning import pattern_summary, reasoning_display
from strokeaid_site.errors import ConflictError


def _workup_lines(workup: dict[str, Any] | None) -> list[str]:
    lines = []
    for f in FIELDS:
        value = (workup or {}).get(f.name)
        if value is None:
            shown = _("unknown")
        elif value is True:
            shown = _("yes")
        elif value is False:
            shown = _("no")
        else:
            shown = str(value)
        lines.append(f"{_(f.label)}: {shown}")
    return lines


def prediction_report(job: PredictionJob, *, with_checks: bool = True) -> dict[str, Any]:
    """What the report page and picture show, translated (see :class:`ReportContent`);
    ``with_checks`` adds the case's live consistency checks (the page shows them, the
    picture does not)."""
    if job.status != JobStatus.DONE:
        raise ConflictError(
            _("The prediction is not done (status: %(status)s).") % {"status": job.status},
            {"status": job.status},
        )
    labels = list(Label.objects.filter(label_set=job.model.label_set))
    title_of = {lab.name: lab.title for lab in labels}
    colors = {lab.title: lab.color for lab in labels}
    shown = reasoning_display(reasoning=job.reasoning, case=job.case if with_checks else None)
    methods = shown.get("methods") or {}
    vote = methods.get("segmentation_vote") or {}
    combined = methods.get("combined")
    rules = methods.get("toast_rules") or {}
    answers = [
        (
            _("Segmentation vote"),
            {
                title_of.get(k, k): float(v)
                for k, v in (vote.get("probabilities") or job.probabilities).items()
            },
        )
    ]
    if combined:
        answers.append(
            (
                _("Case model (pattern + work-up)"),
                {title_of.get(k, k): float(v) for k, v in combined["probabilities"].items()},
            )
        )
    explanation = [
        f"{e['feature']}: {e['value']:g} ({'+' if e['effect'] >= 0 else ''}{e['effect']:.2f})"
        for e in (combined or {}).get("explanation", [])
    ]
    headline_name = job.etiology.title if job.etiology else _("no etiology (no lesion found)")
    flags = (job.lesions or {}).get("flags") or []
    if flags:
        headline_name = _("no answer: the result is flagged (%(flags)s)") % {
            "flags": ", ".join(flags)
        }
    confidence = f" ({job.confidence:.0%})" if job.confidence is not None and not flags else ""
    return {
        "job": job,
        "title": _("Stroke AID report: case %(code)s") % {"code": job.case.code},
        "subtitle": _("Model %(model)s · %(date)s")
        % {
            "model": job.model.name,
            "date": formats.date_format(job.finished_at or job.created_at, "SHORT_DATETIME_FORMAT"),
        },
        "headline": _("Etiology: %(etiology)s") % {"etiology": headline_name} + confidence,
        "answers": answers,
        "rules_line": rules.get("reason") or "",
        "rules_etiology": rules.get("etiology_display") or "",
        "explanation": explanation,
        "explanation_items": (combined or {}).get("explanation", []),
        "pattern": pattern_summary(shown.get("pattern")),
        "workup": _workup_lines(shown.get("workup_used")),
        "gaps": rules.get("gaps") or [_("None: the work-up decides it.")],
        "warning": _("Demo model: synthetic data, not for clinical use")
        if job.model.is_demo
        else "",
        "colors": colors,
        "value_titles": {lab.value: lab.title for lab in labels},
        "checks": shown.get("checks") or [],
    }


def prediction_report_png(job: PredictionJob) -> bytes:
    """The report picture of a done prediction."""
    data = prediction_report(job, with_checks=False)
    content = ReportContent(
        title=data["title"],
        subtitle=data["subtitle"],
        headline=data["headline"],
        answers=data["answers"],
        rules_line=data["rules_line"],
        explanation=data["explanation"],
        pattern=data["pattern"],
        workup=data["workup"],
        gaps=data["gaps"],
        warning=data["warning"],
        colors=data["colors"],
        value_titles=data["value_titles"],
        labels_heading=_("Predicted lesion"),
        no_lesion=_("No lesion found."),
        headings={
            "rules": _("TOAST rules"),
            "explanation": _("What moved the case model"),
            "pattern": _("Lesion pattern"),
            "workup": _("Work-up used"),
            "gaps": _("Work-up that would decide it"),
            "slice": _("slice"),
        },
    )
    reference = job.reference_series
    image = labels = None
    aspect = 1.0
    if reference is not None and getattr(reference, "volume", None) is not None:
        # Key slices are shown in the radiological convention, like every other picture.
        display = reference.display
        image = to_display(storage.read_array(reference.volume.key, mmap=True), display)
        labels = to_display(prediction_label_volume(job=job), display)
        spacing = [float(s) for s in reference.spacing]
        aspect = display_aspect((spacing[1], spacing[2]), display)
        content.edges = display.edges
    return render_report_png(content, image=image, labels=labels, aspect=aspect)
