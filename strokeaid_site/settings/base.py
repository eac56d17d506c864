"""Settings shared by every environment, driven by environment variables (12-factor)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost"]),
    CSRF_TRUSTED_ORIGINS=(list, []),
    REDIS_URL=(str, ""),
    STROKEAID_DATA_DIR=(str, str(BASE_DIR / "data")),
    STORAGE_BACKEND=(str, "local"),
    LOG_FORMAT=(str, "text"),
    LOG_LEVEL=(str, "INFO"),
)
# A .env file next to manage.py is read when present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="insecure-dev-key-change-me")
DEBUG = env("DEBUG")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_q",
    "channels",
    "csp",
    "axes",
    "core",
    "accounts",
    "cases",
    "annotation",
    "inference",
    "etiology",
    "bot",
    "gateway",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "strokeaid_site.middleware.UserLanguageMiddleware",
    "strokeaid_site.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: turns a locked-out login (any path) into accounts.security.lockout_response.
    "axes.middleware.AxesMiddleware",
]

# --- Content-Security-Policy (django-csp) ------------------------------------------------
# Everything is served from this origin (no CDN: clinics run offline). Scripts: our files and
# the two small inline start-up scripts carrying the per-request nonce; no inline handlers, no
# eval. Styles allow inline style attributes (label colour swatches, Chart.js and Swagger UI
# set them); images include data:/blob: (canvas snapshots, Swagger's icons).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", "blob:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Login guards (django-axes; see accounts/security.py) ---------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# A username is locked from the address that failed, not for everyone (a ward's shared NAT
# address must not lock out all its clinicians because one of them forgot a password).
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_CLIENT_IP_CALLABLE = "accounts.security.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.security.lockout_response"
AXES_VERBOSE = False

ROOT_URLCONF = "strokeaid_site.urls"
ASGI_APPLICATION = "strokeaid_site.asgi.application"
WSGI_APPLICATION = "strokeaid_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "strokeaid_site.context_processors.roles",
                "strokeaid_site.navigation.nav_items",
            ],
        },
    },
]

DATA_DIR = Path(env("STROKEAID_DATA_DIR")).resolve()

DATABASES = {
    # An empty DATABASE_URL (as in a copied .env.example) means the embedded SQLite default.
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'strokeaid.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL + a busy timeout let the web process and the task worker share one SQLite file.
    # IMMEDIATE transactions take the write lock when they begin: a deferred transaction that
    # reads and then writes cannot wait for the lock (SQLite answers "database is locked" at
    # once), so ten racing mask saves gave 500s instead of one 200 and nine 412s.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # Persistent connections per request thread exhausted PostgreSQL's max_connections under
    # 16 clients ("too many clients already"). Default: a psycopg 3 connection pool per process
    # (DB_POOL_MAX connections at most, reused, no connect per request; Django then needs
    # CONN_MAX_AGE 0). DB_POOL=false: a new connection per request (CONN_MAX_AGE, default 0),
    # e.g. behind PgBouncer.
    if env.bool("DB_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN", default=1),
            "max_size": env.int("DB_POOL_MAX", default=8),
            "timeout": 10,
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "cases:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("ru", _("Russian"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS: list[Path | tuple[str, Path]] = [BASE_DIR / "static"]
# npm packages (Cornerstone and friends) are served from node_modules as /static/vendor/...
if (BASE_DIR / "node_modules").is_dir():
    STATICFILES_DIRS.append(("vendor", BASE_DIR / "node_modules"))

REDIS_URL = env("REDIS_URL")

# --- Storage -------------------------------------------------------------------------------
# Local disk under STROKEAID_DATA_DIR by default; "s3" selects django-storages' S3 backend
# (any S3-compatible object store) for volumes, masks, models and exports.
STORAGE_BACKEND = env("STORAGE_BACKEND")
if STORAGE_BACKEND == "s3":
    _data_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("S3_BUCKET", default="strokeaid"),
            "endpoint_url": env("S3_ENDPOINT_URL", default="") or None,
            "access_key": env("S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env("S3_SECRET_ACCESS_KEY", default="") or None,
            "region_name": env("S3_REGION", default="") or None,
            "default_acl": None,
            "file_overwrite": True,
        },
    }
else:
    _data_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "store")},
    }
STORAGES = {
    "default": _data_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Channels (websockets) ----------------------------------------------------------------
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # Without Redis: in-memory delivery plus a database relay, so the task workers' progress
    # events reach the web process's websockets (core/channel_layers.py).
    CHANNEL_LAYERS = {"default": {"BACKEND": "core.channel_layers.DatabaseRelayChannelLayer"}}

# --- Caches ------------------------------------------------------------------------------
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "strokeaid",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Background tasks (django-q2) ---------------------------------------------------------
# Two queues share one broker: "default" for ingestion, prediction and export, and "training"
# (started with Q_CLUSTER_NAME=training) for long training runs, so a training never blocks
# predictions. Training: retry above timeout and a single attempt, so a killed worker never
# starts a second copy of the same run.
_Q_BROKER: dict[str, object] = {"redis": REDIS_URL} if REDIS_URL else {"orm": "default"}
_TRAINING_TIMEOUT = env.int("Q_TRAINING_TIMEOUT", default=6 * 3600)
Q_CLUSTER = {
    "name": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=1800),
    "retry": env.int("Q_RETRY", default=1900),
    "max_attempts": 1,
    "queue_limit": 50,
    "bulk": 1,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 500,
    "poll": 0.5,
    "label": "Tasks",
    **_Q_BROKER,
    "ALT_CLUSTERS": {
        "training": {
            "workers": 1,
            "timeout": _TRAINING_TIMEOUT,
            "retry": _TRAINING_TIMEOUT + 600,
            "max_attempts": 1,
        },
    },
}
TRAINING_QUEUE = "training"

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bot.auth.BotChatAuthentication",
        "accounts.tokens.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "strokeaid_site.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "strokeaid_site.schema.AutoSchema",
    "EXCEPTION_HANDLER": "strokeaid_site.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"token": "20/min"},
    # The client address for throttling: REMOTE_ADDR unless reverse proxies are trusted (then
    # the address that many hops back in X-Forwarded-For). DRF's default (None) took the whole
    # X-Forwarded-For header, so a new header per try bypassed the login throttle.
    "NUM_PROXIES": env.int("TRUSTED_PROXY_COUNT", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stroke AID API",
    "DESCRIPTION": "Cases, images, masks, predictions, training runs and exports.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the npm package served as static files: no CDN (clinics run offline).
    "SWAGGER_UI_DIST": f"{STATIC_URL}vendor/swagger-ui-dist",
    "SWAGGER_UI_FAVICON_HREF": f"{STATIC_URL}vendor/swagger-ui-dist/favicon-32x32.png",
    # Several models have a "status"; give each choice set its own stable component name.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "inference.models.JobStatus",
        "CaseStatusEnum": "cases.models.Case.Status",
        "UploadStatusEnum": "cases.models.UploadJob.Status",
    },
}

# --- Uploads ------------------------------------------------------------------------------
# Django's own cap on in-memory request bodies; files stream to a temp dir above 10 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Larger uploads spool here (not /tmp), so `manage.py sweep_files` finds what a killed server
# left behind.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
DATA_UPLOAD_MAX_NUMBER_FILES = 4000

# --- App tunables (read through strokeaid_site.conf.app_settings) --------------------------
STROKEAID = {
    "DATA_DIR": DATA_DIR,
    "MAX_UPLOAD_BYTES": env.int("STROKEAID_MAX_UPLOAD_BYTES", default=1024 * 1024 * 1024),
    "MAX_UPLOAD_FILES": env.int("STROKEAID_MAX_UPLOAD_FILES", default=3000),
    # Any other body (masks, binary PUTs); JSON and forms: DATA_UPLOAD_MAX_MEMORY_SIZE.
    "MAX_BODY_BYTES": env.int("STROKEAID_MAX_BODY_BYTES", default=192 * 1024 * 1024),
    # API tokens expire after this many hours (0: never); a password change revokes them.
    "TOKEN_TTL_HOURS": env.float("STROKEAID_TOKEN_TTL_HOURS", default=720.0),
    "ASYNC_UPLOAD_BYTES": env.int("STROKEAID_ASYNC_UPLOAD_BYTES", default=32 * 1024 * 1024),
    "ZIP_MAX_ENTRIES": env.int("STROKEAID_ZIP_MAX_ENTRIES", default=5000),
    "ZIP_MAX_TOTAL_BYTES": env.int("STROKEAID_ZIP_MAX_TOTAL_BYTES", default=4 * 1024**3),
    "ZIP_MAX_RATIO": env.int("STROKEAID_ZIP_MAX_RATIO", default=200),
    "UID_SECRET": env("STROKEAID_UID_SECRET", default=SECRET_KEY),
    "UID_ROOT": env("STROKEAID_UID_ROOT", default="2.25"),
    "DEVICE": env("STROKEAID_DEVICE", default="auto"),
    # Each task worker loads the active model and the MNI atlas as it starts (not on the
    # first prediction it gets).
    "WORKER_WARMUP": env.bool("STROKEAID_WORKER_WARMUP", default=True),
    # Running jobs touch their row this often; one silent for JOB_STALE_SECONDS is dead.
    "JOB_HEARTBEAT_SECONDS": env.float("STROKEAID_JOB_HEARTBEAT_SECONDS", default=20.0),
    "JOB_STALE_SECONDS": env.float("STROKEAID_JOB_STALE_SECONDS", default=90.0),
    # The Stroke AID bot (bot.telegram): its own process, a client of the REST API only.
    "TELEGRAM_BOT_TOKEN": env("TELEGRAM_BOT_TOKEN", default=""),
    "TELEGRAM_API_URL": env("TELEGRAM_API_URL", default="https://api.telegram.org"),
    "TELEGRAM_BOT_NAME": env("TELEGRAM_BOT_NAME", default=""),
    "API_URL": env("STROKEAID_API_URL", default="http://127.0.0.1:8000"),
    "BOT_API_TOKEN": env("STROKEAID_BOT_TOKEN", default=""),
    "BOT_STUDIES_PER_HOUR": env.int("STROKEAID_BOT_STUDIES_PER_HOUR", default=5),
    # The DICOM gateway (gateway/): the C-STORE receiver of studies from a PACS.
    "DICOM_AE_TITLE": env("STROKEAID_DICOM_AE_TITLE", default="STROKEAID"),
    "DICOM_PORT": env.int("STROKEAID_DICOM_PORT", default=11112),
    "DICOM_PEERS": env("STROKEAID_DICOM_PEERS", default=""),
    "DICOM_STUDY_TIMEOUT": env.float("STROKEAID_DICOM_STUDY_TIMEOUT", default=30.0),
    "DICOM_AUTOPREDICT": env.bool("STROKEAID_DICOM_AUTOPREDICT", default=False),
    "DICOM_DESTINATIONS": env("STROKEAID_DICOM_DESTINATIONS", default=""),
    "DICOM_LINKAGE_DAYS": env.float("STROKEAID_DICOM_LINKAGE_DAYS", default=7.0),
    "GATEWAY_KEY": env("STROKEAID_GATEWAY_KEY", default=""),
    # The PACS's DICOMweb service ("Import from PACS": QIDO-RS search, WADO-RS retrieve).
    "DICOMWEB_URL": env("STROKEAID_DICOMWEB_URL", default=""),
    "DICOMWEB_AUTH": env("STROKEAID_DICOMWEB_AUTH", default=""),
}

# --- Logging ------------------------------------------------------------------------------
LOG_FORMAT = env("LOG_FORMAT")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "strokeaid_site.logging.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "filters": {"expected_refusals": {"()": "strokeaid_site.logging.ExpectedRefusalFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["expected_refusals"],
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL")},
    "loggers": {
        "django_q": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        # httpx logs every request URL at INFO, and Bot API URLs carry the bot's token.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "telegram": {"level": "WARNING"},
        "pynetdicom": {"level": "WARNING"},
    },
}

# Reverse proxies (Ingress, nginx) terminate TLS and forward the original host and scheme.
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
