"""Reads of the cases app: who may see and change which case and series, and the label set.

Visibility rules (one place, used by APIs, pages and other apps):

* neurologists, reviewers and data managers see every case; clinicians see the cases they
  created; a user without any role sees nothing;
* neurologists and data managers may change any case, clinicians their own ones; reviewers
  only read cases (they act on annotations);
* only data managers (and superusers) delete cases.

An unknown object and an object the caller may not see are the same ``NotFoundError`` (404),
so ids cannot be probed; a visible object the caller may not change is ``ForbiddenError``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case as CaseWhen
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from accounts.roles import CLINICIAN, DATA_MANAGER, NEUROLOGIST, REVIEWER, user_roles
from cases.models import Case, Label, Series, UploadJob, Volume
from strokeaid_site.errors import ApplicationError, ForbiddenError, NotFoundError

User = AbstractBaseUser | AnonymousUser

#: Roles that see every case.
READ_ALL_ROLES = frozenset({NEUROLOGIST, REVIEWER, DATA_MANAGER})
#: Roles that change every case.
WRITE_ALL_ROLES = frozenset({NEUROLOGIST, DATA_MANAGER})
#: Roles that may create cases (clinicians bring new studies; reviewers only review).
CREATE_ROLES = frozenset({NEUROLOGIST, DATA_MANAGER, CLINICIAN})


def case_can_create(*, user: User) -> bool:
    return bool(user_roles(user) & CREATE_ROLES)


def case_can_write(*, user: User, case: Case) -> bool:
    roles = user_roles(user)
    if roles & WRITE_ALL_ROLES:
        return True
    return CLINICIAN in roles and case.created_by_id == user.pk


def case_can_delete(*, user: User, case: Case) -> bool:
    return DATA_MANAGER in user_roles(user) or bool(getattr(user, "is_superuser", False))


def case_get(*, case_id: int) -> Case | None:
    """The case ``case_id`` with no permission check, or None: for commands run by the
    operator (``manage.py predict``), never for requests."""
    return Case.objects.filter(pk=case_id).first()


def case_visible_queryset(*, user: User) -> QuerySet[Case]:
    """Every case ``user`` may see (no joins: compose with ``select_related`` as needed)."""
    roles = user_roles(user)
    if roles & READ_ALL_ROLES:
        return Case.objects.all()
    if CLINICIAN in roles:
        return Case.objects.filter(created_by_id=user.pk)
    return Case.objects.none()


# A correlated subquery rather than JOIN + GROUP BY: the paginator's COUNT(*) then drops it,
# and further filters never multiply rows.
_SERIES_COUNT = Coalesce(
    Subquery(
        Series.objects.filter(case=OuterRef("pk"))
        .order_by()
        .values("case")
        .annotate(n=Count("id"))
        .values("n")[:1]
    ),
    0,
)


def _case_list_queryset(*, user: User) -> QuerySet[Case]:
    return (
        case_visible_queryset(user=user)
        .select_related("etiology", "created_by")
        .annotate(series_count=_SERIES_COUNT)
    )


def case_get_for_user(*, user: User, case_id: int, for_write: bool = False) -> Case:
    """The case ``case_id`` as ``user`` may see it, with ``series_count`` annotated.

    Raises:
        NotFoundError: unknown or not visible.
        ForbiddenError: visible, but ``for_write`` and the user may not change it.
    """
    case = _case_list_queryset(user=user).filter(pk=case_id).first()
    if case is None:
        raise NotFoundError(_("Case not found."), {"case": case_id})
    if for_write and not case_can_write(user=user, case=case):
        raise ForbiddenError(_("You may not change this case."), {"case": case_id})
    return case


def case_list_for_user(*, user: User, filters: dict[str, Any] | None = None) -> QuerySet[Case]:
    """Visible cases, newest first, filtered.

    ``filters`` keys (all optional, empty values ignored): ``etiology`` (label name, or
    ``"none"`` for cases without one), ``confirmed`` (bool or "true"/"false"), ``status``,
    ``q`` (code contains, case-insensitive), ``created_by`` (user id).
    """
    filters = filters or {}
    qs = _case_list_queryset(user=user)
    etiology = filters.get("etiology")
    if etiology:
        qs = (
            qs.filter(etiology__isnull=True)
            if etiology == "none"
            else qs.filter(etiology__name=etiology)
        )
    confirmed = _as_bool(filters.get("confirmed"))
    if confirmed is not None:
        qs = qs.filter(confirmed=confirmed)
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("q"):
        qs = qs.filter(Q(code__icontains=str(filters["q"]).strip()))
    if filters.get("created_by"):
        qs = qs.filter(created_by_id=filters["created_by"])
    return qs.order_by("-created_at", "-id")


def _as_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    return None


def series_get_for_user(*, user: User, series_id: int, for_write: bool = False) -> Series:
    """The series ``series_id`` (with its case and volume) as ``user`` may see it.

    Raises:
        NotFoundError: unknown, or its case is not visible.
        ForbiddenError: visible, but ``for_write`` and the user may not change its case.
    """
    series = (
        Series.objects.select_related("case", "volume")
        .filter(pk=series_id, case__in=case_visible_queryset(user=user))
        .first()
    )
    if series is None:
        raise NotFoundError(_("Series not found."), {"series": series_id})
    if for_write and not case_can_write(user=user, case=series.case):
        raise ForbiddenError(_("You may not change this case."), {"series": series_id})
    return series


def series_kind_order(prefix: str = "") -> CaseWhen:
    """An ORDER BY expression for ``Series.KIND_ORDER`` (``prefix``: e.g. ``"series__"``)."""
    return CaseWhen(
        *(
            When(**{f"{prefix}kind": kind}, then=Value(i))
            for i, kind in enumerate(Series.KIND_ORDER)
        ),
        default=Value(len(Series.KIND_ORDER)),
        output_field=IntegerField(),
    )


def series_list_for_case(*, case: Case) -> QuerySet[Series]:
    """The series of a case the caller already got through ``case_get_for_user``, in the
    clinical order of ``Series.KIND_ORDER`` (DWI, ADC, FLAIR, CT, other), oldest first."""
    return (
        Series.objects.filter(case=case)
        .select_related("volume")
        .order_by(series_kind_order(), "id")
    )


def labels_active() -> QuerySet[Label]:
    """The labels of the active label set, by voxel value (background 0 is not a label)."""
    return Label.objects.filter(label_set__is_active=True).order_by("value")


def volume_keys_referenced() -> list[str]:
    """Storage keys of every stored volume (the orphan sweep keeps these)."""
    return list(Volume.objects.values_list("key", flat=True))


def staging_keys_referenced() -> list[str]:
    """Staged files of uploads still waiting or being ingested (kept by the sweep)."""
    active = UploadJob.objects.filter(
        status__in=[UploadJob.Status.QUEUED, UploadJob.Status.RUNNING]
    ).exclude(staging_key="")
    return [f"{key}*" for key in active.values_list("staging_key", flat=True)]


def upload_job_get_for_user(*, user: Any, job_id: int) -> UploadJob:
    """The upload job ``job_id`` if its case is visible to ``user`` (else 404)."""
    job = (
        UploadJob.objects.filter(pk=job_id, case__in=case_visible_queryset(user=user))
        .prefetch_related("series__volume")
        .first()
    )
    if job is None:
        raise NotFoundError(_("Upload not found."), {"job": job_id})
    return job


def upload_job_can_view(user: Any, job_id: int) -> bool:
    """Websocket access check for the "upload" job kind."""
    try:
        upload_job_get_for_user(user=user, job_id=job_id)
    except ApplicationError:
        return False
    return True
