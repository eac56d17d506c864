"""Etiology reasoning beside the voxel vote: the predicted mask's lesion pattern, the TOAST
rules over pattern + work-up, and (when one is active) the learned case-level model.

Stored with the prediction in a language-neutral form (message ids and parameters) and
rendered in the reader's language by :func:`reasoning_display`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy.typing as npt
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from cases.models import Case, Series
from etiology.reasoning.case_model import CaseModel, case_features
from etiology.reasoning.toast import RuleResult, toast_rules
from etiology.selectors import (
    checks_for_case,
    label_title,
    pattern_for_labels,
    rule_gaps_text,
    rule_reason_text,
    workup_for_case,
)
from inference.ml.predictor import PredictionOutput

logger = logging.getLogger(__name__)


def prediction_reasoning(
    *,
    case: Case,
    output: PredictionOutput,
    reference: Series,
    image: npt.NDArray[Any] | None,
    label_names: dict[int, str],
    case_model: CaseModel | None = None,
) -> dict[str, Any]:
    """The reasoning of one prediction (stored on the job; see the module docstring)."""
    pattern = pattern_for_labels(labels=output.label_volume, series=reference, image=image)
    workup = workup_for_case(case=case)
    rules = toast_rules(pattern if pattern.count else None, workup)
    vote_name = label_names.get(output.etiology) if output.etiology is not None else None
    methods_extra: dict[str, Any] = {}
    if case_model is not None and not output.flags:
        # A flagged result (no head, implausible volume) is not an answer for any method.
        methods_extra["combined"] = case_model.answer(case_features(pattern, workup))
    return {
        "pattern": pattern.to_dict(),
        "workup_used": workup,
        "methods": {
            "segmentation_vote": {
                "etiology": vote_name,
                "probabilities": {
                    label_names.get(v, str(v)): float(p) for v, p in output.probabilities.items()
                },
            },
            "toast_rules": {
                "etiology": rules.etiology,
                "code": rules.code,
                "reasons": [[m, p] for m, p in rules.reasons],
                "gaps": [[m, p] for m, p in rules.gaps],
                "suggests": rules.suggests,
            },
            **methods_extra,
        },
    }


def _rules_from(stored: dict[str, Any]) -> RuleResult:
    return RuleResult(
        etiology=stored["etiology"],
        code=stored.get("code", ""),
        reasons=[(m, dict(p)) for m, p in stored.get("reasons", [])],
        gaps=[(m, dict(p)) for m, p in stored.get("gaps", [])],
        suggests=stored.get("suggests"),
    )


def reasoning_display(*, reasoning: dict[str, Any] | None, case: Case | None) -> dict[str, Any]:
    """The REST shape of a prediction's reasoning, in the active language: ``pattern``,
    ``methods`` (``toast_rules`` with its ``reason`` and ``gaps`` as text), ``workup_used``
    and the case's current ``checks``."""
    if not reasoning:
        return {}
    methods = {k: dict(v) for k, v in reasoning.get("methods", {}).items()}
    stored_rules = methods.get("toast_rules")
    if stored_rules:
        rules = _rules_from(stored_rules)
        methods["toast_rules"] = {
            "etiology": rules.etiology,
            "etiology_display": label_title(rules.etiology),
            "reason": rule_reason_text(rules),
            "gaps": rule_gaps_text(rules),
        }
    return {
        "pattern": reasoning.get("pattern"),
        "methods": methods,
        "workup_used": reasoning.get("workup_used"),
        "checks": checks_for_case(case=case) if case is not None else [],
    }


#: Pattern flags named in the summary, in reading order.
_PATTERN_FACTS = (
    ("bilateral", gettext_noop("bilateral")),
    ("multi_territory", gettext_noop("several territories")),
    ("cortical", gettext_noop("cortical")),
    ("insula", gettext_noop("insula")),
    ("deep_small", gettext_noop("single small deep infarct")),
    ("border_zone", gettext_noop("border-zone chain")),
)


def pattern_summary(pattern: dict[str, Any] | None) -> list[str]:
    """Short sentences describing a stored pattern for pages and the report picture."""
    if not pattern or not pattern.get("count"):
        return [_("No lesion found.")]
    lines = [
        _("%(count)d infarct(s), %(volume).1f ml in all, largest %(diameter).0f mm")
        % {
            "count": pattern["count"],
            "volume": pattern["volume_ml"],
            "diameter": pattern["largest_diameter_mm"],
        }
    ]
    if pattern.get("territories"):
        lines.append(_("Territories: %(names)s") % {"names": ", ".join(pattern["territories"])})
    facts = [_(text) for key, text in _PATTERN_FACTS if pattern.get(key)]
    if facts:
        lines.append(", ".join(facts))
    return lines


def reasoning_safe(**kwargs: Any) -> dict[str, Any]:
    """:func:`prediction_reasoning`, or ``{}`` when it fails (the prediction itself stands:
    a failed atlas look-up must not fail the segmentation)."""
    try:
        return prediction_reasoning(**kwargs)
    except Exception:
        logger.exception("etiology reasoning failed for case %s", kwargs.get("case"))
        return {}
