"""Dataset snapshots: freeze which cases, series and mask revisions train a model, and the split.

The split is by CASE (slices of one patient are strongly correlated; splitting slices would
leak them across train and test), deterministic for a seed and stratified by etiology, via
the ML core's ``split_cases``. A snapshot is stored, so a model version always points at
exactly the data it saw even after masks are edited later.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _

from cases import storage
from cases.models import Case, LabelSet, Series
from etiology.selectors import series_affine_zyx
from inference.ml.data import CaseArrays, split_cases
from inference.models import DatasetItem, DatasetSnapshot
from inference.services.arrays import (
    case_volumes_load,
    mask_to_reference,
    reference_kind,
    series_by_kind,
)
from inference.services.sources import case_masks
from strokeaid_site.errors import ApplicationError

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    parsed = parse_date(str(value))
    if parsed is None:
        raise ApplicationError(_("Invalid date for %(name)s.") % {"name": name}, {name: value})
    return parsed


def dataset_candidates(
    *, case_ids: list[int] | None, filters: dict[str, Any] | None = None
) -> tuple[list[Case], dict[int, Any], str]:
    """The cases a snapshot would hold, their chosen masks, and the mode.

    Default mode (``case_ids=None``): confirmed cases with an approved mask, narrowed by
    ``filters``: ``etiology`` (label name or list of names), ``created_after`` /
    ``created_before`` (ISO dates, inclusive); ``include_unconfirmed: true`` adds the cases
    with an approved mask whose etiology is not confirmed (semi-supervised: their masks
    teach where lesions are, never an etiology). Explicit mode: exactly the listed cases
    with their newest mask revision.

    Raises:
        ApplicationError: unknown case ids, listed cases without a mask or without images.
    """
    filters = dict(filters or {})
    if case_ids is None:
        qs = Case.objects.filter(confirmed=True, etiology__isnull=False)
        etiology = filters.get("etiology")
        if etiology:
            names = [etiology] if isinstance(etiology, str) else list(etiology)
            qs = qs.filter(etiology__name__in=names)
        after = _date(filters.get("created_after"), "created_after")
        before = _date(filters.get("created_before"), "created_before")
        if after:
            qs = qs.filter(created_at__date__gte=after)
        if before:
            qs = qs.filter(created_at__date__lte=before)
        semi = filters.get("include_unconfirmed") is True and not etiology
        if semi:
            unconfirmed = Case.objects.filter(Q(confirmed=False) | Q(etiology__isnull=True))
            if after:
                unconfirmed = unconfirmed.filter(created_at__date__gte=after)
            if before:
                unconfirmed = unconfirmed.filter(created_at__date__lte=before)
            qs = qs | unconfirmed
        cases = list(qs.distinct().select_related("etiology").order_by("id"))
        masks = case_masks(
            case_ids=[c.pk for c in cases], approved_only=True, confirmed_only=not semi
        )
        cases = [c for c in cases if c.pk in masks]
        return cases, masks, "approved"
    ids = sorted({int(i) for i in case_ids})
    cases = list(Case.objects.filter(pk__in=ids).select_related("etiology").order_by("id"))
    missing = sorted(set(ids) - {c.pk for c in cases})
    if missing:
        raise ApplicationError(_("Unknown cases: %(ids)s.") % {"ids": missing}, {"cases": missing})
    masks = case_masks(case_ids=ids, approved_only=False)
    unmasked = [c.code for c in cases if c.pk not in masks]
    if unmasked:
        raise ApplicationError(
            _("These cases have no mask to train on: %(codes)s.") % {"codes": ", ".join(unmasked)},
            {"cases_without_mask": unmasked},
        )
    return cases, masks, "explicit"


def dataset_snapshot_create(
    *,
    user: User | None,
    case_ids: list[int] | None = None,
    filters: dict[str, Any] | None = None,
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    name: str = "",
) -> DatasetSnapshot:
    """Builds and stores a dataset snapshot with a case-level, etiology-stratified split.

    Raises:
        ApplicationError: no usable case, bad filters or fractions (see
            :func:`dataset_candidates`).
    """
    label_set = LabelSet.objects.filter(is_active=True).first()
    if label_set is None:
        raise ApplicationError(_("No label set is active."))
    cases, masks, mode = dataset_candidates(case_ids=case_ids, filters=filters)
    if not cases:
        raise ApplicationError(
            _(
                "No case can train a model: a dataset needs confirmed cases with approved "
                "masks (or an explicit list of cases with masks)."
            ),
            {"filters": filters or {}},
        )
    series = Series.objects.filter(case__in=cases).only(
        "id", "case_id", "kind", "quarantined", "shape", "affine"
    )
    per_case: dict[int, list[Series]] = {}
    for s in series:
        per_case.setdefault(s.case_id, []).append(s)
    no_images = []
    kinds: dict[int, dict[str, int]] = {}
    for case in cases:
        chosen = series_by_kind(per_case.get(case.pk, []))
        if reference_kind(chosen) is None:
            no_images.append(case.code)
        kinds[case.pk] = {k: s.pk for k, s in chosen.items()}
    if no_images:
        raise ApplicationError(
            _("These cases have no DWI or FLAIR series: %(codes)s.")
            % {"codes": ", ".join(no_images)},
            {"cases_without_images": no_images},
        )
    # A case's etiology is known when a neurologist confirmed it; the others (explicit
    # lists, ``include_unconfirmed``) train the "any lesion" part of the loss only, so they
    # go to the training split: they cannot score an etiology in validation or test.
    known = [c for c in cases if c.confirmed and c.etiology is not None]
    known_ids = {c.pk for c in known}
    if not known:
        raise ApplicationError(
            _("A dataset needs at least one case with a confirmed etiology."),
            {"filters": filters or {}},
        )
    try:
        split = split_cases(
            [c.pk for c in known],
            [c.etiology.name if c.etiology else None for c in known],
            fractions=tuple(float(f) for f in fractions),  # type: ignore[arg-type]
            seed=seed,
        )
    except ValueError as exc:
        raise ApplicationError(str(exc), {"fractions": list(fractions)}) from exc
    split.update({c.pk: "train" for c in cases if c.pk not in known_ids})
    counts: dict[str, Any] = dict(Counter(split.values()))
    counts["etiology"] = dict(
        Counter(c.etiology.name if c.pk in known_ids and c.etiology else "none" for c in cases)
    )
    counts["unconfirmed"] = len(cases) - len(known)
    counts["total"] = len(cases)
    with transaction.atomic():
        snapshot = DatasetSnapshot.objects.create(
            name=name[:200],
            label_set=label_set,
            filters={"mode": mode, **(filters or {})},
            seed=seed,
            fractions=[float(f) for f in fractions],
            counts=counts,
            created_by=user if user is not None and user.is_authenticated else None,
        )
        DatasetItem.objects.bulk_create(
            [
                DatasetItem(
                    snapshot=snapshot,
                    case=case,
                    case_code=case.code,
                    etiology=case.etiology if case.pk in known_ids else None,
                    split=split[case.pk],
                    series_ids=kinds[case.pk],
                    revisions=[masks[case.pk].as_json()],
                )
                for case in cases
            ]
        )
    return snapshot


def dataset_case_arrays(*, snapshot: DatasetSnapshot, split: str) -> list[CaseArrays]:
    """Loads the images and masks of one split of a snapshot for the ML core.

    Raises:
        ApplicationError: a case or series of the snapshot was deleted since.
    """
    items = list(
        snapshot.items.filter(split=split).select_related("case", "etiology").order_by("case_id")
    )
    series_ids = [sid for item in items for sid in item.series_ids.values()]
    series_ids += [rev["series"] for item in items for rev in item.revisions]
    series = {s.pk: s for s in Series.objects.filter(pk__in=series_ids).select_related("volume")}
    out = []
    for item in items:
        if item.case is None:
            raise ApplicationError(
                _("Case %(code)s of the dataset was deleted.") % {"code": item.case_code}
            )
        chosen = [series[sid] for sid in item.series_ids.values() if sid in series]
        vols = case_volumes_load(case=item.case, series=chosen)
        rev = item.revisions[0]
        mask_series = series.get(rev["series"])
        if mask_series is None:
            raise ApplicationError(
                _("The masked series of case %(code)s was deleted.") % {"code": item.case_code}
            )
        mask = mask_to_reference(
            storage.read_array(rev["key"]), mask_series=mask_series, reference=vols.reference
        )
        out.append(
            CaseArrays(
                case_id=str(item.case_id),
                volumes=vols.volumes,
                mask=np.asarray(mask, dtype=np.uint8),
                spacing=vols.spacing,
                etiology=item.etiology.value if item.etiology else None,
                etiology_known=item.etiology is not None,
                affine=series_affine_zyx(vols.reference),
            )
        )
    return out
