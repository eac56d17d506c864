"""The model registry: register a trained model (weights + row, all or nothing), activate one."""

from __future__ import annotations

import functools
import hashlib
import subprocess
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import DATA_MANAGER, has_role
from cases import storage
from cases.models import LabelSet
from cases.services.audit import audit_record
from inference.models import DatasetSnapshot, ModelVersion, TrainingRun
from strokeaid_site.errors import ConflictError, ForbiddenError


@functools.cache
def code_version() -> str:
    """``git describe`` of the running code when available, else the package version."""
    base = Path(settings.BASE_DIR)
    if (base / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "describe", "--always", "--dirty", "--tags"],
                cwd=base,
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
            if out.stdout.strip():
                return out.stdout.strip()[:100]
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        return f"strokeaid {metadata.version('strokeaid')}"
    except metadata.PackageNotFoundError:
        return "strokeaid 0.1.0"


def model_version_register(
    *,
    name: str,
    checkpoint_file: Path,
    spec: dict[str, Any],
    label_set: LabelSet,
    run: TrainingRun | None = None,
    dataset: DatasetSnapshot | None = None,
    hyperparameters: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    training_seconds: float = 0.0,
    is_demo: bool = False,
    activate: bool = False,
    user: User | None = None,
    unusable_reason: str = "",
    case_model_key: str = "",
    case_model_sha256: str = "",
    case_model: dict[str, Any] | None = None,
) -> ModelVersion:
    """Stores the checkpoint as model weights and creates the ModelVersion row.

    A model with an ``unusable_reason`` (the sanity rule) is registered - its page says why -
    but never activated, whatever ``activate`` asks. ``activate`` takes effect only when no
    model is active; replacing an active model goes through ``model_activate``.

    Precondition: call it inside ``storage.transactional()`` together with whatever else
    finishes the run (it opens its own nested block, so it is all-or-nothing on its own too):
    if anything fails, the weights file is deleted and no row remains.
    """
    data = Path(checkpoint_file).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    stem = f"run{run.pk}" if run is not None else "model"
    key = storage.model_key(name=f"{stem}-{uuid.uuid4().hex[:12]}.pt")
    with storage.transactional():
        storage.write_bytes(key, data)
        version = ModelVersion.objects.create(
            name=name[:200],
            run=run,
            dataset=dataset,
            label_set=label_set,
            weights_key=key,
            weights_sha256=digest,
            weights_bytes=len(data),
            spec=spec,
            hyperparameters=hyperparameters or {},
            metrics=metrics or {},
            training_seconds=float(training_seconds),
            code_version=code_version(),
            is_demo=is_demo,
            usable=not unusable_reason,
            unusable_reason=unusable_reason,
            case_model_key=case_model_key,
            case_model_sha256=case_model_sha256,
            case_model=case_model or {},
            created_by=user if user is not None and user.is_authenticated else None,
        )
        audit_record(
            actor=user if user is not None and user.is_authenticated else None,
            verb="model.register",
            target=version,
            data={"name": version.name, "demo": is_demo, "run": run.pk if run else None},
        )
        # Registration activates only when no model is active: replacing one is a decision
        # against the active model's numbers (model_activate).
        if activate and version.usable and not ModelVersion.objects.filter(is_active=True).exists():
            version = _activate(version=version, user=user)
    return version


def _activate(
    *, version: ModelVersion, user: User | None, decision: dict[str, Any] | None = None
) -> ModelVersion:
    # Deactivate first: the partial unique constraint allows one active row at any instant.
    previous = list(
        ModelVersion.objects.filter(is_active=True)
        .exclude(pk=version.pk)
        .values_list("pk", flat=True)
    )
    ModelVersion.objects.filter(pk__in=previous).update(is_active=False)
    now = timezone.now()
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=now)
    version.is_active = True
    version.activated_at = now
    audit_record(
        actor=user if user is not None and user.is_authenticated else None,
        verb="model.activate",
        target=version,
        data={"name": version.name, "replaced": previous, **(decision or {})},
    )
    return version


def model_activate(
    *,
    user: User | None,
    model: ModelVersion,
    override_reason: str = "",
    comparison: dict[str, Any] | None = None,
) -> ModelVersion:
    """Makes ``model`` the single active model (data managers; ``user=None`` = the system).

    When another model is active, the two are compared on their shared held-out cases
    (``inference.services.promotion``; computed now unless ``comparison`` is given). A
    candidate worse than the active model there is refused unless ``override_reason`` says
    why; the comparison and the reason go into the audit trail.

    Raises:
        ForbiddenError: the user is not a data manager.
        ConflictError: the model's label set is no longer the active one (its classes
            would not match the labels users see), the sanity rule found it unusable, or it
            is worse than the active model and no override reason was given (the comparison
            is in ``extra``).
    """
    from inference.services.promotion import comparison_for, comparison_sentence

    if user is not None and not has_role(user, DATA_MANAGER):
        raise ForbiddenError(_("Only data managers may activate models."))
    if not model.usable:
        raise ConflictError(
            _("This model cannot be activated: %(reason)s.") % {"reason": model.unusable_message},
            {"model": model.pk, "unusable_reason": model.unusable_reason},
        )
    if not LabelSet.objects.filter(pk=model.label_set_id, is_active=True).exists():
        raise ConflictError(
            _("This model was trained with another label set than the active one."),
            {"model": model.pk, "label_set": model.label_set_id},
        )
    override_reason = (override_reason or "").strip()
    decision: dict[str, Any] = {}
    active = ModelVersion.objects.filter(is_active=True).exclude(pk=model.pk).first()
    if active is not None:
        if comparison is None or comparison.get("candidate") != model.pk:
            comparison = comparison_for(candidate=model, active=active, user=user)
        decision = {
            "compared_with": active.pk,
            "shared_cases": comparison["n"],
            "candidate_numbers": comparison["candidate_numbers"],
            "active_numbers": comparison["active_numbers"],
            "worse_on": comparison["worse_on"],
        }
        if comparison["worse"]:
            if not override_reason:
                raise ConflictError(
                    _(
                        "This model is worse than the active model on their shared held-out "
                        "cases; activating it needs an override reason. %(numbers)s"
                    )
                    % {"numbers": comparison_sentence(comparison)},
                    {"model": model.pk, "active": active.pk, "comparison": comparison},
                )
            decision["override_reason"] = override_reason
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(pk=model.pk).first()
        return _activate(version=model, user=user, decision=decision)
