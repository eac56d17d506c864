"""The ASGI server command line, in one place (``manage.py serve``, the benchmarks; the
container entry point spells the same options in shell).

Uvicorn (httptools, uvloop, websockets) streams each request body to the application as it
arrives, so ``strokeaid_site.bodylimit`` refuses an oversized or over-declared body before it
is read. Daphne, used before, received every body in full first (a 2 GiB ``Content-Length``
with a 10-byte body hung the request) and parsed multipart bodies itself, in memory, answering
an empty 400 to any it could not parse.
"""

from __future__ import annotations

import os
import sys

APP = "strokeaid_site.asgi:application"


MAX_WEB_PROCESSES = 4


def default_web_processes(*, sqlite: bool) -> int:
    """uvicorn processes when ``WEB_CONCURRENCY`` is not set: one per core (at most
    ``MAX_WEB_PROCESSES``) on PostgreSQL, where one process left a 2-core machine's p99 at
    325 ms under 16 clients and two brought it to 119 ms (bench/load.py); one on the embedded
    SQLite default, whose single writer gains nothing from more. Job events cross the
    processes through Redis, or without it through the embedded relay table."""
    if sqlite:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WEB_PROCESSES, cores or 1))


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
