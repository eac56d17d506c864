"""Websocket consumer streaming job progress (uploads, training, prediction, export)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .events import job_group, job_kind_access


# channels ships no type information, so its base class is Any to the type checker.
class JobProgressConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """``ws/jobs/<kind>/<id>/``: authenticated users who may see the job get its events."""

    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        kind = self.scope["url_route"]["kwargs"]["kind"]
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        can_view = job_kind_access(kind)
        if user is None or not user.is_authenticated or can_view is None:
            await self.close(code=4403)
            return
        if not await database_sync_to_async(can_view)(user, job_id):
            await self.close(code=4404)
            return
        self.group = job_group(kind, job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def job_event(self, event: dict[str, Any]) -> None:
        await self.send_json(event["payload"])
