"""docker/compose.yaml: valid against the Compose spec, and wired the way docker/README.md says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .manifests import DOCKER, compose, read_env_file

APP_SERVICES = ("migrate", "web", "worker", "training-worker", "training-worker-gpu", "demo")
LONG_RUNNING = ("web", "worker", "training-worker", "training-worker-gpu")


def _check_jsonschema() -> str:
    local = Path(sys.executable).with_name("check-jsonschema")
    found = str(local) if local.exists() else shutil.which("check-jsonschema")
    if not found:
        pytest.skip("check-jsonschema is not installed (requirements-dev.txt)")
    return found


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    result = subprocess.run(
        [
            _check_jsonschema(),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DOCKER / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_app_services_share_settings_and_the_data_volume() -> None:
    services = compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["env_file"] == [".env"], name
        assert "strokeaid-data:/data" in service["volumes"], name
        environment = service["environment"]
        assert environment["STROKEAID_DATA_DIR"] == "/data", name
        assert environment["REDIS_URL"].startswith("redis://redis:"), name
        assert "@db:5432/" in environment["DATABASE_URL"], name
    assert "strokeaid-data" in compose()["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["db"]["volumes"]
    # docker/.env (copied from the example) holds the settings; the example is committed.
    assert (DOCKER / ".env.example").is_file()
    assert not (DOCKER / ".env").exists() or ".env" in (DOCKER.parent / ".gitignore").read_text()


def test_services_start_after_healthy_backends_and_finished_migrations() -> None:
    services = compose()["services"]
    for name in (*LONG_RUNNING, "demo"):
        depends = services[name]["depends_on"]
        assert depends["db"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["restart"] == "no"
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits on {target}"
    for name in LONG_RUNNING:
        assert "healthcheck" in services[name], name


def test_training_workers_take_the_training_queue_with_a_long_grace() -> None:
    services = compose()["services"]
    for name in ("training-worker", "training-worker-gpu"):
        service = services[name]
        assert service["environment"]["Q_CLUSTER_NAME"] == "training", name
        assert service["command"] == ["training-worker"], name
        assert service["stop_grace_period"] in ("1h", "60m", "3600s"), name
    assert "Q_CLUSTER_NAME" not in services["worker"]["environment"]


def test_gpu_worker_is_an_opt_in_profile_reserving_a_gpu() -> None:
    gpu = compose()["services"]["training-worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.gpu"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["environment"]["STROKEAID_DEVICE"] == "cuda"


def test_demo_is_an_optional_one_shot() -> None:
    demo = compose()["services"]["demo"]
    assert demo["profiles"] == ["demo"]
    assert demo["command"] == ["demo"]
    assert demo["restart"] == "no"


def test_env_example_has_placeholder_secrets_only() -> None:
    env = read_env_file(DOCKER / ".env.example")
    for key in ("SECRET_KEY", "STROKEAID_UID_SECRET", "POSTGRES_PASSWORD"):
        assert env[key].startswith("change-me"), key
    # The health check asks for Host: localhost.
    assert "localhost" in env["ALLOWED_HOSTS"].split(",")
    assert env["DJANGO_SETTINGS_MODULE"] == "strokeaid_site.settings.production"


def test_bot_is_an_opt_in_profile_after_the_web_service() -> None:
    bot = compose()["services"]["bot"]
    assert bot["profiles"] == ["bot"] and bot["command"] == ["bot"]
    assert bot["depends_on"]["web"]["condition"] == "service_healthy"
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    env = (DOCKER / ".env.example").read_text()
    assert "TELEGRAM_BOT_TOKEN=\n" in env and "STROKEAID_API_URL=http://web:8000" in env
