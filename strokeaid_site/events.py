"""Job progress events: pushed to browsers over channels, after the surrounding commit.

Apps register who may watch a job kind with ``register_job_kind(kind, can_view)``; the
websocket consumer asks that function before joining a job's group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_JOB_KINDS: dict[str, Callable[[Any, int], bool]] = {}


def register_job_kind(kind: str, can_view: Callable[[Any, int], bool]) -> None:
    """Registers a job kind (``"upload"``, ``"training"``, ...) and its access check."""
    _JOB_KINDS[kind] = can_view


def job_kind_access(kind: str) -> Callable[[Any, int], bool] | None:
    return _JOB_KINDS.get(kind)


def job_group(kind: str, job_id: int) -> str:
    return f"job.{kind}.{job_id}"


def job_event_send(kind: str, job_id: int, payload: dict[str, Any]) -> None:
    """Sends ``payload`` to the job's watchers once the current transaction commits.

    A failure to reach the channel layer never fails the job: progress is also readable
    over REST from the job's row.
    """

    def _send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(
                job_group(kind, job_id), {"type": "job.event", "payload": payload}
            )
        except Exception:
            logger.warning("could not push %s %s progress", kind, job_id, exc_info=True)

    transaction.on_commit(_send)
