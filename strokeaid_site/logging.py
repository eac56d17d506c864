"""Structured JSON log lines for production (one object per line, for log collectors)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class ExpectedRefusalFilter(logging.Filter):
    """Keeps the one-line warning of a refused request (403, 404, 400 for a suspicious one)
    but drops its traceback: a clinician opening a page their role may not see is not a server
    fault, and tracebacks for it buried the real errors in the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.core.exceptions import PermissionDenied, SuspiciousOperation
        from django.http import Http404

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PermissionDenied | Http404 | SuspiciousOperation):
            record.exc_info = None
            record.exc_text = None
        return True
