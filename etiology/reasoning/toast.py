"""TOAST classification (Adams et al., Stroke 1993) as deterministic rules over the lesion
pattern and the work-up, each answer with its reasons and the work-up that would decide it.

The five TOAST groups map onto the platform's default labels:

=====================================  =====================
TOAST                                  label
=====================================  =====================
large-artery atherosclerosis           ``atherothrombotic``
cardioembolism                         ``cardioembolic``
small-vessel occlusion (lacune)        ``lacunar``
stroke of other determined etiology    ``other``
stroke of undetermined etiology        ``cryptogenic``
=====================================  =====================

Rules, in order:

1. Evidence for each cause: a high-risk cardiac source (atrial fibrillation or another
   source), >= 50 % stenosis of the supplying artery, an other determined cause, and a
   lacune (a single deep infarct < 15 mm without cortical involvement, with a lacunar
   syndrome when it is recorded).
2. Two or more causes -> undetermined ("two causes compete"); TOAST also calls a lacune
   with a cardiac source or an ipsilateral stenosis undetermined.
3. One cause -> that cause. A lacune whose syndrome is not recorded is called lacunar
   with the gap named.
4. No cause: with an incomplete work-up (vessel imaging or cardiac work-up not done)
   -> undetermined (incomplete evaluation); with a complete, negative work-up ->
   cryptogenic (undetermined, negative evaluation). The lesion pattern then says which
   work-up would most likely decide it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.workup import cardiac_evidence, gettext_noop, workup_complete

ATHERO, CARDIO, LACUNAR, OTHER, CRYPTO = (
    "atherothrombotic",
    "cardioembolic",
    "lacunar",
    "other",
    "cryptogenic",
)

Message = tuple[str, dict[str, Any]]


@dataclass
class RuleResult:
    """The TOAST answer: ``etiology`` (a label name), ``code`` (which rule decided),
    ``reasons`` and ``gaps`` as ``(msgid, params)`` pairs to translate where shown."""

    etiology: str
    code: str
    reasons: list[Message] = field(default_factory=list)
    gaps: list[Message] = field(default_factory=list)
    suggests: str | None = None


def pattern_suggests(pattern: LesionPattern | None) -> str | None:
    """The mechanism the lesion pattern alone points to (for the work-up gaps), or None.

    Bilateral or multi-territory infarcts and insular involvement point to embolism (a
    cardiac source first); a border-zone chain or a single large territorial infarct to a
    large artery; a single small deep infarct to small-vessel disease.
    """
    if pattern is None or pattern.count == 0:
        return None
    if pattern.deep_small:
        return LACUNAR
    if pattern.bilateral or pattern.multi_territory or (pattern.anterior and pattern.posterior):
        return CARDIO
    if pattern.border_zone:
        return ATHERO
    if pattern.insula:
        return CARDIO
    if pattern.count == 1 and pattern.largest_diameter_mm >= LARGE_INFARCT_MM:
        return ATHERO
    return None


#: A single infarct this wide is territorial (large artery or embolus), not a lacune.
LARGE_INFARCT_MM = 30.0


def _lacune(pattern: LesionPattern | None, workup: Mapping[str, Any]) -> bool:
    return (
        pattern is not None and pattern.deep_small and workup.get("lacunar_syndrome") is not False
    )


def toast_rules(pattern: LesionPattern | None, workup: Mapping[str, Any]) -> RuleResult:
    """Apply the TOAST rules (module docstring) to a lesion pattern and a work-up."""
    causes: list[str] = []
    reasons: list[Message] = []
    if cardiac_evidence(workup):
        causes.append(CARDIO)
        reasons.append(
            (gettext_noop("atrial fibrillation"), {})
            if workup.get("atrial_fibrillation")
            else (gettext_noop("a high-risk cardiac source"), {})
        )
    if workup.get("stenosis_50"):
        causes.append(ATHERO)
        # xgettext:no-python-format
        reasons.append((gettext_noop("≥ 50 % stenosis of the supplying artery"), {}))
    if workup.get("other_cause"):
        causes.append(OTHER)
        reasons.append(
            (gettext_noop("another determined cause: %(cause)s"), {"cause": workup["other_cause"]})
        )
    lacune = _lacune(pattern, workup)
    if lacune:
        causes.append(LACUNAR)
        reasons.append(
            (
                gettext_noop("a single small deep infarct (%(mm).0f mm)"),
                {"mm": pattern.largest_diameter_mm if pattern else 0.0},
            )
        )
    suggests = pattern_suggests(pattern)
    if pattern is not None and pattern.count:
        reasons.append(_pattern_reason(pattern))

    if len(causes) >= 2:
        return RuleResult(
            CRYPTO, "two_causes", [*reasons, (gettext_noop("two causes compete"), {})], [], suggests
        )
    if len(causes) == 1:
        cause = causes[0]
        gaps: list[Message] = []
        if cause == LACUNAR and workup.get("lacunar_syndrome") is None:
            gaps.append((gettext_noop("no lacunar syndrome recorded"), {}))
        if cause == LACUNAR and not workup_complete(workup):
            gaps.extend(_missing_workup(workup))
        return RuleResult(cause, f"single_{cause}", reasons, gaps, suggests)
    gaps = _missing_workup(workup)
    if gaps:
        return RuleResult(
            CRYPTO,
            "incomplete_workup",
            [*reasons, (gettext_noop("the work-up is incomplete"), {})],
            gaps,
            suggests,
        )
    return RuleResult(
        CRYPTO,
        "negative_workup",
        [*reasons, (gettext_noop("complete work-up without a cause"), {})],
        [],
        suggests,
    )


def _missing_workup(workup: Mapping[str, Any]) -> list[Message]:
    gaps: list[Message] = []
    if workup.get("cardiac_workup") is not True:
        gaps.append((gettext_noop("no cardiac monitoring or echocardiography recorded"), {}))
    if workup.get("vessel_imaging") is not True:
        gaps.append((gettext_noop("no vessel imaging recorded"), {}))
    return gaps


def _pattern_reason(pattern: LesionPattern) -> Message:
    if pattern.deep_small:
        return (gettext_noop("single small deep infarct"), {})
    if pattern.bilateral:
        return (gettext_noop("bilateral infarcts"), {})
    if pattern.multi_territory:
        return (gettext_noop("infarcts in several arterial territories"), {})
    if pattern.border_zone:
        return (gettext_noop("a border-zone chain"), {})
    if pattern.count == 1:
        return (gettext_noop("single-territory infarct"), {})
    return (gettext_noop("%(count)d infarcts in one territory"), {"count": pattern.count})
