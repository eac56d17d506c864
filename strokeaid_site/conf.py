"""``app_settings``: the ``STROKEAID`` settings dict with defaults, read lazily."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": None,
    "MAX_UPLOAD_BYTES": 1024 * 1024 * 1024,
    "MAX_UPLOAD_FILES": 3000,
    "MAX_BODY_BYTES": 192 * 1024 * 1024,
    "TOKEN_TTL_HOURS": 720.0,
    "ASYNC_UPLOAD_BYTES": 32 * 1024 * 1024,
    "ZIP_MAX_ENTRIES": 5000,
    "ZIP_MAX_TOTAL_BYTES": 4 * 1024**3,
    "ZIP_MAX_RATIO": 200,
    "UID_SECRET": None,
    "UID_ROOT": "2.25",
    "DEVICE": "auto",
    "WORKER_WARMUP": True,
    "JOB_HEARTBEAT_SECONDS": 20.0,
    "JOB_STALE_SECONDS": 90.0,
    "DICOM_AE_TITLE": "STROKEAID",
    "DICOM_PORT": 11112,
    "DICOM_PEERS": "",
    "DICOM_STUDY_TIMEOUT": 30.0,
    "DICOM_AUTOPREDICT": False,
    "DICOM_DESTINATIONS": "",
    "DICOM_LINKAGE_DAYS": 7.0,
    "GATEWAY_KEY": "",
    "DICOMWEB_URL": "",
    "DICOMWEB_AUTH": "",
}


class AppSettings:
    """Attribute access to ``settings.STROKEAID`` with defaults; re-read on every access so
    ``override_settings`` in tests takes effect."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        user = getattr(settings, "STROKEAID", {})
        value = user.get(name, DEFAULTS[name])
        if name == "DATA_DIR":
            return Path(value or (Path(settings.BASE_DIR) / "data"))
        if name == "UID_SECRET" and not value:
            return settings.SECRET_KEY
        return value


app_settings = AppSettings()
