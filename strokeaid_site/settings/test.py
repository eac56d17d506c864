"""Test settings: PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set, embedded otherwise."""

import os
import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES, Q_CLUSTER, STROKEAID

# Each test session gets its own data directory (volumes, masks, models, exports).
DATA_DIR = Path(tempfile.mkdtemp(prefix="strokeaid-test-"))
STROKEAID["DATA_DIR"] = DATA_DIR
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "store")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Channels' live-server test case refuses in-memory SQLite: use a per-process file.
    DATABASES["default"]["NAME"] = str(DATA_DIR / "db.sqlite3")
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = 0

# Tasks run for real, synchronously, in the test process (no mocks).
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
