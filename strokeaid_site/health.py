"""``/healthz``: the app can serve when the database answers and the task queue is reachable."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ok"
        return f"error: {exc.__class__.__name__}"
    return "ok"


def _check_queue() -> str:
    """The broker django-q2 uses: Redis when configured, the ORM (database) otherwise."""
    try:
        from django_q.brokers import get_broker

        broker = get_broker()
        if not broker.ping():
            return "error: broker did not answer"
    except Exception as exc:  # noqa: BLE001
        return f"error: {exc.__class__.__name__}"
    return "ok"


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    queue = _check_queue()
    ok = database == "ok" and queue == "ok"
    return JsonResponse(
        {"status": "ok" if ok else "error", "database": database, "queue": queue},
        status=200 if ok else 503,
    )
