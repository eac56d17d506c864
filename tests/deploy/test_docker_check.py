"""``make docker-check`` (docker/check.sh) needs root and a Docker engine, so it is a manual
check; what can be checked without an engine is checked here: its scripts parse, every build
argument it passes is one the Dockerfile declares, the base images it builds are the ones it
hands to the build, and the local Dockerfiles copy only what exists."""

from __future__ import annotations

import re
import subprocess

import pytest

from .manifests import DOCKER, ROOT

CHECK = DOCKER / "check.sh"
LOCAL = DOCKER / "local"
SCRIPTS = (CHECK, LOCAL / "make-base.sh", LOCAL / "services-entrypoint.sh")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_valid_shell(script) -> None:
    subprocess.run(["sh", "-n", str(script)], check=True)


def test_every_build_argument_is_declared_by_the_dockerfile() -> None:
    declared = set(re.findall(r"^ARG (\w+)", (DOCKER / "Dockerfile").read_text(), re.M))
    passed = set(re.findall(r"--build-arg \"?(\w+)=", CHECK.read_text()))
    assert passed, "the check passes no build argument?"
    assert passed <= declared, passed - declared


def test_the_local_bases_are_the_images_the_build_is_given() -> None:
    made = set(
        re.findall(r'"\$\{\w+:-(strokeaid/[\w.-]+:\w+)\}"', (LOCAL / "make-base.sh").read_text())
    )
    check = CHECK.read_text()
    given = set(re.findall(r"(?:PYTHON_IMAGE|NODE_IMAGE)=(strokeaid/[\w.-]+:\w+)", check))
    given |= set(re.findall(r"SERVICES_IMAGE:-(strokeaid/[\w.-]+:\w+)", check))
    assert given and given <= made, (given, made)
    for dockerfile in LOCAL.glob("*.Dockerfile"):
        text = dockerfile.read_text()
        assert re.search(r"^ARG BASE=strokeaid/debian:bookworm$", text, re.M), dockerfile
        for source in re.findall(r"^COPY (\S+)", text, re.M):
            assert (LOCAL / source).is_file(), (dockerfile.name, source)


def test_the_stack_check_runs_with_the_images_python_only() -> None:
    """docker/check_stack.py runs inside the web container: the standard library and the
    project, nothing from the test or benchmark tools (which the image does not carry)."""
    text = (DOCKER / "check_stack.py").read_text()
    imported = set(re.findall(r"^\s*(?:from|import) ([\w.]+)", text, re.M))
    assert not {m for m in imported if m.split(".")[0] in {"httpx", "requests", "tests", "bench"}}
    ignored = {
        line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
    }
    assert not ignored & {"docker", "docker/check_stack.py", "*.py"}
