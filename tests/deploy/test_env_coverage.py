"""Every environment variable the settings read is set by each deployment target (compose env
file, each Kubernetes overlay) or deliberately left to its default, with the reason here."""

from __future__ import annotations

import ast

import pytest

from .manifests import (
    DOCKER,
    OVERLAYS,
    ROOT,
    app_containers,
    compose,
    container_env,
    overlay,
    read_env_file,
)

SETTINGS_DIR = ROOT / "strokeaid_site" / "settings"
ENV_METHODS = {
    "str",
    "bool",
    "int",
    "float",
    "list",
    "tuple",
    "dict",
    "json",
    "url",
    "db_url",
    "cache_url",
    "path",
    "bytes",
    "db",
    "cache",
}

# Left to the settings' default on purpose, in every target.
DEFAULTS_EVERYWHERE = {
    # (none yet: every variable is set explicitly, so a deployment reads as it behaves)
}
# Left to defaults in some targets only.
DEFAULTS_BY_TARGET: dict[str, dict[str, str]] = {
    "compose": {
        "S3_BUCKET": "STORAGE_BACKEND=local in compose; S3_* are read only for s3",
        "S3_ENDPOINT_URL": "STORAGE_BACKEND=local in compose; S3_* are read only for s3",
        "S3_ACCESS_KEY_ID": "STORAGE_BACKEND=local in compose; S3_* are read only for s3",
        "S3_SECRET_ACCESS_KEY": "STORAGE_BACKEND=local in compose; S3_* are read only for s3",
        "S3_REGION": "STORAGE_BACKEND=local in compose; S3_* are read only for s3",
    },
    "dev": {
        "S3_BUCKET": "STORAGE_BACKEND=local in dev (shared PVC); S3_* are read only for s3",
        "S3_ENDPOINT_URL": "STORAGE_BACKEND=local in dev (shared PVC)",
        "S3_ACCESS_KEY_ID": "STORAGE_BACKEND=local in dev (shared PVC)",
        "S3_SECRET_ACCESS_KEY": "STORAGE_BACKEND=local in dev (shared PVC)",
        "S3_REGION": "STORAGE_BACKEND=local in dev (shared PVC)",
    },
    "prod": {},
}
# Set by the deployment but read by something other than strokeaid_site/settings.
READ_ELSEWHERE = {
    "DJANGO_SETTINGS_MODULE": "Django (manage.py, asgi.py)",
    "Q_CLUSTER_NAME": "django-q2 (selects the training cluster)",
    "POSTGRES_USER": "the postgres image / compose interpolation of DATABASE_URL",
    "POSTGRES_PASSWORD": "the postgres image / compose interpolation of DATABASE_URL",
    "POSTGRES_DB": "the postgres image / compose interpolation of DATABASE_URL",
    "STROKEAID_HTTP_PORT": "compose interpolation (published port)",
    "WEB_CONCURRENCY": "uvicorn (web server processes)",
    "FORWARDED_ALLOW_IPS": "uvicorn (proxies whose X-Forwarded-* headers are trusted)",
}


def settings_env_vars() -> set[str]:
    """Names passed to ``env(...)``, ``env.<type>(...)`` and ``environ.Env(NAME=...)``."""
    names: set[str] = set()
    for path in sorted(SETTINGS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            is_env_call = (isinstance(func, ast.Name) and func.id == "env") or (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "env"
                and func.attr in ENV_METHODS
            )
            if is_env_call and node.args and isinstance(node.args[0], ast.Constant):
                names.add(node.args[0].value)
            is_env_class = isinstance(func, ast.Attribute) and func.attr == "Env"
            if is_env_class:
                names.update(k.arg for k in node.keywords if k.arg)
            is_os_getenv = isinstance(func, ast.Attribute) and func.attr in ("getenv", "get")
            if is_os_getenv and ast.unparse(func.value) in ("os", "os.environ") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
    return names


def test_settings_parser_finds_the_known_variables() -> None:
    names = settings_env_vars()
    assert {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "STORAGE_BACKEND",
        "LOG_FORMAT",
        "STROKEAID_DATA_DIR",
        "ALLOWED_HOSTS",
        "USE_X_FORWARDED_HOST",
        "SECURE_PROXY_SSL_HEADER",
        "S3_BUCKET",
        "Q_WORKERS",
    } <= names


def test_allowlists_name_variables_the_settings_read() -> None:
    names = settings_env_vars()
    listed = set(DEFAULTS_EVERYWHERE)
    for per_target in DEFAULTS_BY_TARGET.values():
        listed |= set(per_target)
    assert listed <= names, f"stale allowlist entries: {sorted(listed - names)}"
    assert not set(READ_ELSEWHERE) & names


def _check(target: str, provided: set[str], where: str) -> None:
    names = settings_env_vars()
    missing = names - provided - set(DEFAULTS_EVERYWHERE) - set(DEFAULTS_BY_TARGET[target])
    assert not missing, (
        f"{where}: settings read {sorted(missing)} but {target} does not set them; set them or "
        "allowlist them with a reason in tests/deploy/test_env_coverage.py"
    )
    unknown = provided - names - set(READ_ELSEWHERE)
    assert not unknown, f"{where}: sets {sorted(unknown)}, which nothing reads (typo?)"


def test_compose_env_file_and_environment_cover_the_settings() -> None:
    env_file = set(read_env_file(DOCKER / ".env.example"))
    for name, service in compose()["services"].items():
        if "env_file" not in service:
            continue
        provided = env_file | set(service.get("environment", {}))
        _check("compose", provided, f"compose service {name}")


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlay_config_and_secrets_cover_the_settings(name: str) -> None:
    resources = overlay(name)
    for resource, container in app_containers(resources):
        provided = set(container_env(resources, container, name))
        _check(name, provided, f"{name}: {resource['metadata']['name']}/{container['name']}")
