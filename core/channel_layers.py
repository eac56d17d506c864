"""A channel layer for the embedded default (no Redis) whose job events cross processes.

The in-memory layer lives inside one process, so with ``make run`` the task workers' progress
events never reached the web process's websockets. This layer delivers locally like the
in-memory one and also writes every group message to a small table (``core.ChannelEvent``);
a process that has websocket groups polls that table (every ``POLL_SECONDS`` while it has
any) and delivers the rows other processes wrote to its own groups. Rows older than
``KEEP_SECONDS`` are deleted. With ``REDIS_URL`` set the settings use channels-redis instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import InMemoryChannelLayer

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.25
KEEP_SECONDS = 60
#: How long a relay write waits for SQLite's write lock (ms) before the event is dropped.
RELAY_BUSY_MS = 500


class DatabaseRelayChannelLayer(InMemoryChannelLayer):  # type: ignore[misc]
    """In-memory delivery plus a database relay between processes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.origin = uuid.uuid4().hex
        self._last_id: int | None = None
        self._poller: asyncio.Task[None] | None = None

    # --- sending ------------------------------------------------------------------------------
    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        await super().group_send(group, message)
        try:
            await sync_to_async(self._store, thread_sensitive=False)(group, message)
        except Exception:  # the relay is best effort: progress is also on the job's row
            logger.warning("could not relay a channel event", exc_info=True)

    def _store(self, group: str, message: dict[str, Any]) -> None:
        from django.db import close_old_connections, connection

        from core.models import ChannelEvent

        # The sender waits for this write (job_event_send is synchronous), and the relay is
        # best effort: on SQLite, give up on a held write lock after a moment instead of the
        # connection's 20 s busy timeout (a task writing progress, or a test holding its
        # transaction open across its on-commit callbacks, would otherwise stall that long).
        restore = None
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA busy_timeout")
                restore = int(cursor.fetchone()[0])
                cursor.execute(f"PRAGMA busy_timeout = {int(RELAY_BUSY_MS)}")
        try:
            ChannelEvent.objects.create(group=group[:100], message=message, origin=self.origin)
        finally:
            if restore is not None and connection.connection is not None:
                with connection.cursor() as cursor:
                    cursor.execute(f"PRAGMA busy_timeout = {restore}")
            close_old_connections()

    # --- receiving ----------------------------------------------------------------------------
    async def group_add(self, group: str, channel: str) -> None:
        await super().group_add(group, channel)
        if self._poller is None or self._poller.done():
            if self._last_id is None:
                self._last_id = await sync_to_async(self._newest, thread_sensitive=False)()
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    def _newest(self) -> int:
        from core.models import ChannelEvent

        newest = ChannelEvent.objects.order_by("-id").values_list("id", flat=True).first()
        return int(newest or 0)

    def _fetch(self, after: int) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        """``(newest id, [(group, message)])`` of the rows other processes wrote after
        ``after`` (the newest id is read first, so no row slips between the two reads)."""
        from django.db import close_old_connections
        from django.utils import timezone

        from core.models import ChannelEvent

        newest = int(ChannelEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0)
        rows = list(
            ChannelEvent.objects.filter(id__gt=after, id__lte=newest)
            .exclude(origin=self.origin)
            .order_by("id")
            .values_list("group", "message")
        )
        ChannelEvent.objects.filter(
            created_at__lt=timezone.now() - timedelta(seconds=KEEP_SECONDS)
        ).delete()
        close_old_connections()
        return max(newest, after), [(str(g), dict(m)) for g, m in rows]

    async def _poll(self) -> None:
        while self.groups:
            await asyncio.sleep(POLL_SECONDS)
            try:
                newest, rows = await sync_to_async(self._fetch, thread_sensitive=False)(
                    self._last_id or 0
                )
            except Exception:
                logger.warning("channel relay poll failed", exc_info=True)
                continue
            self._last_id = newest
            for group, message in rows:
                if group in self.groups:
                    with contextlib.suppress(Exception):
                        await super().group_send(group, message)
