"""Loading the deployment files once for the tests in this package (compose, kustomize)."""

from __future__ import annotations

import base64
import functools
import importlib.util
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
K8S = DOCKER / "k8s"
OVERLAYS = ("dev", "prod")
# The application image's names (CPU and CUDA) before the overlays' `images:` rewrite them.
APP_IMAGE_NAMES = ("strokeaid", "strokeaid-gpu")

_spec = importlib.util.spec_from_file_location("strokeaid_k8s_render", K8S / "render.py")
assert _spec is not None and _spec.loader is not None
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)

Resource = dict[str, Any]


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


@functools.cache
def rendered(target: str) -> tuple[Resource, ...]:
    """Resources of ``docker/k8s/<target>`` (``base`` or ``overlays/<name>``)."""
    return tuple(render.build(K8S / target))


def overlay(name: str) -> tuple[Resource, ...]:
    return rendered(f"overlays/{name}")


def find(resources: tuple[Resource, ...], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; comments and blank lines skipped (the compose/kustomize env format)."""
    data = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            data[key.strip()] = value
    return data


def pod_spec(resource: Resource) -> dict[str, Any] | None:
    spec = resource.get("spec", {})
    if resource["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if "template" in spec:
        return spec["template"]["spec"]
    return None


def is_app_image(image: str) -> bool:
    name = render._image_name(image).rsplit("/", 1)[-1]
    return name in APP_IMAGE_NAMES


def app_containers(resources: tuple[Resource, ...]) -> list[tuple[Resource, dict[str, Any]]]:
    """(workload, container) for every container that runs the Stroke AID image."""
    out = []
    for resource in resources:
        spec = pod_spec(resource)
        if spec is None:
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            if is_app_image(container["image"]):
                out.append((resource, container))
    return out


def secret_keys(resources: tuple[Resource, ...], name: str, overlay_name: str) -> set[str]:
    """Keys of Secret ``name``: rendered (dev) or documented in secret.example.env (prod)."""
    secrets = [r for r in resources if r["kind"] == "Secret" and r["metadata"]["name"] == name]
    if secrets:
        return set(secrets[0].get("data", {}))
    example = K8S / "overlays" / overlay_name / "secret.example.env"
    assert example.is_file(), f"Secret {name} is neither generated nor documented in {example}"
    return set(read_env_file(example))


def container_env(
    resources: tuple[Resource, ...], container: dict[str, Any], overlay_name: str
) -> dict[str, str | None]:
    """Variables a container gets: env entries, ConfigMap and Secret envFrom (secret = None)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = find(resources, "ConfigMap", source["configMapRef"]["name"])["data"]
            env.update(data)
        elif "secretRef" in source:
            env.update(
                dict.fromkeys(secret_keys(resources, source["secretRef"]["name"], overlay_name))
            )
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def decoded_secret(resource: Resource) -> dict[str, str]:
    return {k: base64.b64decode("".join(v.split())).decode() for k, v in resource["data"].items()}
