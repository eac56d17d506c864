"""The ASGI server command line, in one place (``manage.py serve``, the benchmarks; the
container entry point spells the same options in shell).

Uvicorn (httptools, uvloop, websockets) streams each request body to the application as it
arrives, so ``strokeaid_site.bodylimit`` refuses an oversized or over-declared body before it
is read. Daphne, used before, received every body in full first (a 2 GiB ``Content-Length``
with a 10-byte body hung the request) and parsed multipart bodies itself, in memory, answering
an empty 400 to any it could not parse.
"""

from __future__ import annotations

import sys

APP = "strokeaid_site.asgi:application"


def server_command(
    *, host: str, port: int, proxy_headers: bool = False, log_level: str = "warning"
) -> list[str]:
    """The command that serves HTTP and websockets on ``host:port``."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        APP,
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",  # channels' router has no lifespan protocol
        "--ws",
        "websockets-sansio",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        log_level,
    ]
    if not proxy_headers:
        command.append("--no-proxy-headers")
    return command
