"""Container health check (Docker HEALTHCHECK): one script for every role of the image.

A web container is healthy when ``GET /healthz`` answers 200 (database and task broker reachable).
A worker container is healthy while its django-q2 cluster process is alive (the image's entry
point runs it under tini; if it exits, the container exits too). Exit 0 = healthy, 1 = not.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path


def _running_commands() -> list[str]:
    commands = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            commands.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # the process ended while we looked
            continue
    return commands


def main() -> int:
    commands = _running_commands()
    if any("qcluster" in command for command in commands):
        return 0
    if not any("uvicorn" in command for command in commands):
        # A one-shot role (migrate, demo) or a custom command: nothing to probe.
        return 0
    port = os.environ.get("PORT", "8000")
    # "localhost" must be in ALLOWED_HOSTS (the env examples include it).
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=4) as response:  # noqa: S310 - fixed URL
            return 0 if response.status == 200 else 1
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"healthz failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
