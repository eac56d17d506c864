"""Consistency checks: where a case's etiology, its approved mask's pattern and its work-up
contradict each other by the TOAST definitions. A check informs; it never blocks saving."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.toast import ATHERO, CARDIO, CRYPTO, LACUNAR
from etiology.reasoning.workup import cardiac_evidence, gettext_noop, workup_complete

#: A lacune is under 15 mm (TOAST); a label on a lesion over this is a contradiction.
LACUNE_CONTRADICTION_MM = 20.0


@dataclass(frozen=True)
class Check:
    code: str
    severity: str  # "warning" | "error"
    message: str  # msgid
    params: tuple[tuple[str, Any], ...] = ()


def case_checks(
    *,
    etiology: str | None,
    workup: Mapping[str, Any],
    pattern: LesionPattern | None = None,
    mask_labels: Collection[str] = (),
) -> list[Check]:
    """Every contradiction of ``etiology`` (a label name or None) with the pattern of the
    approved mask, the names of the labels painted in it, and the work-up."""
    out: list[Check] = []
    if etiology is None:
        return out
    if etiology == LACUNAR and pattern is not None and pattern.count:
        if pattern.cortical:
            out.append(
                Check(
                    "lacunar_cortical",
                    "warning",
                    gettext_noop("A lacunar label on an infarct that reaches the cortex."),
                )
            )
        if pattern.largest_diameter_mm > LACUNE_CONTRADICTION_MM:
            out.append(
                Check(
                    "lacunar_large",
                    "warning",
                    gettext_noop(
                        "A lacunar label on an infarct of %(mm).0f mm (a lacune is under 15 mm)."
                    ),
                    (("mm", pattern.largest_diameter_mm),),
                )
            )
        if pattern.count > 1:
            out.append(
                Check(
                    "lacunar_multiple",
                    "warning",
                    gettext_noop("A lacunar label on %(count)d separate infarcts."),
                    (("count", pattern.count),),
                )
            )
    if etiology == LACUNAR and workup.get("lacunar_syndrome") is False:
        out.append(
            Check(
                "lacunar_no_syndrome",
                "warning",
                gettext_noop("A lacunar label although no lacunar syndrome was found."),
            )
        )
    if etiology == ATHERO and workup.get("stenosis_50") is not True:
        explicit = workup.get("stenosis_50") is False
        out.append(
            Check(
                "athero_no_stenosis",
                "error" if explicit else "warning",
                gettext_noop(
                    "Atherothrombotic, but vessel imaging found no stenosis of at least 50 %."
                )
                if explicit
                else gettext_noop(
                    "Atherothrombotic without a documented stenosis of at least 50 %."
                ),
            )
        )
    if etiology == CARDIO and not cardiac_evidence(workup):
        explicit = (
            workup.get("atrial_fibrillation") is False and workup.get("cardiac_source") is False
        )
        out.append(
            Check(
                "cardio_no_source",
                "error" if explicit else "warning",
                gettext_noop("Cardioembolic, but the cardiac work-up found no source.")
                if explicit
                else gettext_noop("Cardioembolic without a documented cardiac source."),
            )
        )
    if etiology == CRYPTO and not workup_complete(workup):
        out.append(
            Check(
                "cryptogenic_incomplete",
                "warning",
                gettext_noop(
                    "Cryptogenic, but the vessel imaging or the cardiac work-up is not recorded "
                    "as done."
                ),
            )
        )
    if etiology == CRYPTO and (
        cardiac_evidence(workup) or workup.get("stenosis_50") or workup.get("other_cause")
    ):
        out.append(
            Check(
                "cryptogenic_with_cause",
                "warning",
                gettext_noop("Cryptogenic, although the work-up documents a cause."),
            )
        )
    others = sorted(set(mask_labels) - {etiology})
    if others:
        out.append(
            Check(
                "mask_labels_differ",
                "warning",
                gettext_noop("The approved mask is painted with other labels: %(labels)s."),
                (("labels", ", ".join(others)),),
            )
        )
    return out
