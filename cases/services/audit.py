"""The audit trail: one function records every state change and saved revision."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import models

from cases.models import AuditEvent, Case


def audit_record(
    *,
    actor: User | None,
    verb: str,
    target: models.Model,
    case: Case | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends an audit event (``verb`` like ``"annotation.submitted"``) for ``target``.

    Call it inside the service's transaction so the event exists iff the change does.
    """
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        verb=verb,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        case=case,
        data=data or {},
    )
