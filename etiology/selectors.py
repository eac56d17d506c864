"""Reads of the etiology app: the work-up, the lesion pattern of a label volume or of a
case's approved mask, and the consistency checks."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt
from django.core.cache import cache
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, NEUROLOGIST, REVIEWER, user_roles
from annotation.selectors import annotations_training_ready, mask_array
from cases import storage
from cases.models import Case, Label, Series
from etiology.models import Workup
from etiology.reasoning.checks import Check, case_checks
from etiology.reasoning.pattern import LesionPattern
from etiology.reasoning.registration import Registration
from etiology.reasoning.study import study_pattern
from etiology.reasoning.toast import RuleResult
from etiology.reasoning.workup import FIELD_NAMES, empty_workup

logger = logging.getLogger(__name__)

#: How long a computed pattern is kept (a mask revision never changes).
PATTERN_CACHE_SECONDS = 24 * 3600


def workup_for_case(*, case: Case) -> dict[str, Any]:
    """The case's work-up, every key present (``None`` = not known)."""
    row = Workup.objects.filter(case=case).first()
    if row is None:
        return empty_workup()
    return {name: getattr(row, name) for name in FIELD_NAMES}


def series_affine_zyx(series: Series) -> npt.NDArray[np.float64]:
    """The series' voxel ``(k, j, i, 1)`` -> RAS mm matrix (stored as ``(i, j, k)``)."""
    affine = np.asarray(series.affine, dtype=np.float64).reshape(4, 4)
    out = affine.copy()
    out[:3, :3] = affine[:3, [2, 1, 0]]
    return out


def pattern_for_labels(
    *, labels: npt.NDArray[Any], series: Series, image: npt.NDArray[Any] | None = None
) -> LesionPattern:
    """The lesion pattern of a label volume on ``series``' grid (registration to MNI and
    the AAL territories when the atlas is installed; else territories stay unknown)."""
    volume = getattr(series, "volume", None)
    if image is None:
        image = storage.read_array(volume.key, mmap=True) if volume is not None else None
    # A stored series never changes: its registration to MNI is computed once.
    key = f"etiology:registration:{series.pk}:{volume.sha256}" if volume is not None else None
    cached: Registration | None = cache.get(key) if key else None
    pattern, registration = study_pattern(
        labels,
        volumes={series.kind: np.asarray(image) if image is not None else None},
        spacing=tuple(float(s) for s in series.spacing),  # type: ignore[arg-type]
        affine_zyx=series_affine_zyx(series),
        registration=cached,
    )
    if key and registration is not None and cached is None:
        cache.set(key, registration, PATTERN_CACHE_SECONDS)
    return pattern


def case_approved_pattern(*, case: Case) -> tuple[LesionPattern | None, list[str]]:
    """The pattern of the case's approved mask and the label names painted in it, or
    ``(None, [])`` without an approved mask. Cached per mask revision."""
    annotation = (
        annotations_training_ready()
        .filter(series__case=case)
        .order_by("-is_consensus", "-reviewed_at", "-pk")
        .select_related("series__volume", "current_revision")
        .first()
    )
    if annotation is None or annotation.current_revision is None:
        return None, []
    key = f"etiology:pattern:{annotation.current_revision.pk}:{annotation.series_id}"
    cached: tuple[LesionPattern | None, list[str]] | None = cache.get(key)
    if cached is not None:
        return cached
    mask = mask_array(revision=annotation.current_revision)
    values = [int(v) for v in np.unique(mask) if v]
    names = list(
        Label.objects.filter(label_set__is_active=True, value__in=values).values_list(
            "name", flat=True
        )
    )
    result = (pattern_for_labels(labels=mask, series=annotation.series), sorted(names))
    cache.set(key, result, PATTERN_CACHE_SECONDS)
    return result


def _check_dict(check: Check) -> dict[str, Any]:
    params = dict(check.params)
    return {
        "code": check.code,
        "severity": check.severity,
        "message": _(check.message) % params if params else _(check.message),
    }


def checks_for_case(*, case: Case) -> list[dict[str, Any]]:
    """The case's open consistency checks (REST shape, messages in the active language)."""
    pattern, names = case_approved_pattern(case=case)
    checks = case_checks(
        etiology=case.etiology.name if case.etiology else None,
        workup=workup_for_case(case=case),
        pattern=pattern,
        mask_labels=names,
    )
    return [_check_dict(c) for c in checks]


def checks_can_list(*, user: Any) -> bool:
    return bool(user_roles(user) & {DATA_MANAGER, NEUROLOGIST, REVIEWER})


def cases_with_checks(*, cases: QuerySet[Case]) -> list[tuple[Case, list[dict[str, Any]]]]:
    """``(case, checks)`` for every case of ``cases`` with an etiology and open checks."""
    out = []
    for case in cases.filter(etiology__isnull=False).select_related("etiology").order_by("code"):
        checks = checks_for_case(case=case)
        if checks:
            out.append((case, checks))
    return out


def label_title(name: str | None) -> str:
    """The display name of a label of the active label set (the name when unknown)."""
    if not name:
        return ""
    label = Label.objects.filter(label_set__is_active=True, name=name).first()
    return label.title if label is not None else name


def rule_reason_text(result: RuleResult) -> str:
    """The TOAST answer's reasons as one sentence in the active language."""
    parts = [_(msg) % params if params else _(msg) for msg, params in result.reasons]
    label = label_title(result.etiology)
    return (", ".join(parts) + " → " + label) if parts else label


def rule_gaps_text(result: RuleResult) -> list[str]:
    """The work-up that would decide it, with what the pattern suggests, as sentences."""
    gaps = [_(msg) % params if params else _(msg) for msg, params in result.gaps]
    if not gaps:
        return []
    if result.suggests and result.etiology != result.suggests:
        return [
            _("The pattern suggests %(etiology)s; %(gap)s.")
            % {"etiology": label_title(result.suggests), "gap": gap}
            for gap in gaps
        ]
    return [_("%(gap)s.") % {"gap": gap[:1].upper() + gap[1:]} for gap in gaps]
