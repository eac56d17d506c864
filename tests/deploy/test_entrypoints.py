"""The images' entry points exist: COPY'd files, entry point roles, manage.py commands, the
ASGI application, and the torch pins the Dockerfiles share with requirements.txt."""

from __future__ import annotations

import fnmatch
import importlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from django.core.management import get_commands

from .manifests import DOCKER, ROOT, app_containers, compose, overlay, pod_spec, rendered

DOCKERFILES = (DOCKER / "Dockerfile", DOCKER / "Dockerfile.gpu")
ENTRYPOINT = DOCKER / "entrypoint.sh"
ASGI_TARGET = "strokeaid_site.asgi:application"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text(encoding="utf-8"))
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str) -> bool:
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in _dockerignore():
        assert not pattern.startswith("!"), "exceptions are not handled by this check"
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern) or fnmatch.fnmatch(
                candidate, pattern.removeprefix("**/")
            ):
                return True
    return False


def _entrypoint_roles() -> set[str]:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    return set(re.findall(r"^  ([a-z][a-z-]*)\)$", text, flags=re.MULTILINE))


def _manage_py_commands() -> dict[str, set[str]]:
    """Every ``manage.py <command>`` in the images, the entry point, compose and k8s."""
    found: dict[str, set[str]] = {}

    def add(command: str, where: str) -> None:
        found.setdefault(command, set()).add(where)

    texts = {p.name: p.read_text(encoding="utf-8") for p in (*DOCKERFILES, ENTRYPOINT)}
    defaults = dict(re.findall(r'(\w+)="\$\{\1:-([\w-]+)\}"', texts[ENTRYPOINT.name]))
    for where, text in texts.items():
        for command in re.findall(r"manage\.py\s+\"?([\w$]+)\"?", text):
            add(defaults.get(command.strip("$"), command), where)
    argvs: list[tuple[list[str], str]] = []
    for name, service in compose()["services"].items():
        if isinstance(service.get("command"), list):
            argvs.append((service["command"], f"compose {name}"))
    for target in ("base", "overlays/dev", "overlays/prod"):
        for resource, container in app_containers(rendered(target)):
            argv = container.get("command", []) + container.get("args", [])
            argvs.append((argv, f"k8s {target} {resource['metadata']['name']}"))
    for argv, where in argvs:
        if "manage.py" in argv:
            add(argv[argv.index("manage.py") + 1], where)
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_copied_files_exist_and_are_not_docker_ignored(dockerfile: Path) -> None:
    copies = [rest for instruction, rest in _instructions(dockerfile) if instruction == "COPY"]
    assert copies
    for rest in copies:
        args = shlex.split(rest)
        if any(a.startswith("--from=") for a in args):
            continue
        sources = [a for a in args if not a.startswith("--")][:-1]
        for source in sources:
            if source == ".":
                continue
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}: missing"
            assert not _ignored(source), f"{dockerfile.name}: COPY {source} is .dockerignored"
    # `COPY . .` must still bring what the entry point and the build steps use.
    for needed in (
        "manage.py",
        "docker/entrypoint.sh",
        "docker/healthcheck.py",
        "strokeaid_site/asgi.py",
        "requirements.txt",
        "locale",
        "static",
        "templates",
        "package.json",
        "package-lock.json",
    ):
        assert (ROOT / needed).exists(), needed
        assert not _ignored(needed), f"{needed} is excluded by .dockerignore"
    for secret in ("docker/.env", ".env", ".venv", "node_modules", "data", ".git"):
        assert _ignored(secret), f"{secret} would enter the build context"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_is_multi_stage_non_root_with_healthcheck_and_sigterm(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    froms = [rest for instruction, rest in instructions if instruction == "FROM"]
    assert len(froms) >= 3, "multi-stage build"
    last_stage = instructions[
        max(i for i, (instruction, _) in enumerate(instructions) if instruction == "FROM") :
    ]
    users = [rest for instruction, rest in last_stage if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert ("STOPSIGNAL", "SIGTERM") in last_stage
    (healthcheck,) = [rest for instruction, rest in last_stage if instruction == "HEALTHCHECK"]
    assert "/app/docker/healthcheck.py" in healthcheck
    (entrypoint,) = [rest for instruction, rest in last_stage if instruction == "ENTRYPOINT"]
    assert entrypoint == '["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]'
    text = dockerfile.read_text(encoding="utf-8")
    assert "compilemessages" in text
    if dockerfile.name == "Dockerfile":
        assert "npm ci" in text and "collectstatic --no-input" in text
        assert "COPY --from=node /src/node_modules ./node_modules" in text


def test_entrypoint_is_executable_and_valid_shell() -> None:
    mode = subprocess.run(
        ["git", "ls-files", "--stage", str(ENTRYPOINT.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if mode:  # committed: git must record it executable, or the image cannot run it
        assert mode[0] == "100755"
    subprocess.run(["sh", "-n", str(ENTRYPOINT)], check=True)
    assert _entrypoint_roles() >= {
        "web",
        "worker",
        "training-worker",
        "migrate",
        "wait-for-migrations",
        "demo",
    }


def test_compose_and_kubernetes_use_entrypoint_roles_or_manage_py() -> None:
    roles = _entrypoint_roles()
    for name, service in compose()["services"].items():
        if "image" in service and str(service["image"]).startswith("${STROKEAID"):
            assert service["command"][0] in roles, name
    for target in ("overlays/dev", "overlays/prod"):
        for resource, container in app_containers(overlay(target.split("/")[1])):
            argv = container.get("command", []) + container.get("args", [])
            assert argv[0] in roles or argv[:2] == ["python", "manage.py"], (
                resource["metadata"]["name"],
                argv,
            )
            assert "command" not in container, "keep the image's tini entry point"
        for resource in rendered(target):
            spec = pod_spec(resource)
            if spec is not None and resource["metadata"]["name"].startswith("strokeaid"):
                assert spec["containers"]


def test_every_manage_py_command_exists() -> None:
    commands = get_commands()
    used = _manage_py_commands()
    assert {"qcluster", "migrate", "collectstatic", "compilemessages"} <= set(used)
    missing = {command: sorted(where) for command, where in used.items() if command not in commands}
    assert not missing, f"manage.py commands used by the deployment but not defined: {missing}"


def test_asgi_application_imports() -> None:
    assert ASGI_TARGET in ENTRYPOINT.read_text(encoding="utf-8")
    module_name, attribute = ASGI_TARGET.split(":")
    application = getattr(importlib.import_module(module_name), attribute)
    assert callable(application)


def _pin(text: str, package: str) -> str:
    match = re.search(rf"^{package}==([\w.]+)\s*$", text, flags=re.MULTILINE)
    assert match, f"{package} is not pinned exactly"
    return match.group(1)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_torch_pins_match_requirements(dockerfile: Path) -> None:
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    text = dockerfile.read_text(encoding="utf-8")
    for package, arg in (("torch", "TORCH_VERSION"), ("torchvision", "TORCHVISION_VERSION")):
        (pinned,) = re.findall(rf"^ARG {arg}=([\w.]+)$", text, flags=re.MULTILINE)
        assert pinned == _pin(requirements, package), f"{dockerfile.name}: {arg}"
    # torch first from the PyTorch index, then the rest constrained to that exact build.
    assert "download.pytorch.org/whl/" in text
    assert "pip install -r requirements.txt -c /tmp/torch-constraints.txt" in text
