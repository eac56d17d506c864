"""Benchmark: the slice editor's first rendered slice and mask save round trip (JSON out).

The platform runs as deployed (uvicorn + the ASGI app, SQLite, a temporary data dir, static
files collected and served by WhiteNoise) on a free loopback port, with one phantom case of
three 25 x 256 x 256 series (DWI, ADC, FLAIR). Debian's Chromium (Playwright, headless) then:

* loads the editor ``--loads`` times (fresh browser context each time, so nothing is cached)
  and reads ``window.__strokeaid_first_render_ms``: milliseconds from navigation start to the
  first slice drawn by Cornerstone (the page also sets a ``strokeaid-first-render`` mark);
* paints a full label volume (every voxel of the DWI mask set) and saves it ``--saves`` times
  through the editor's own save path (gzip + ``PUT mask.raw`` + If-Match), reading
  ``window.__strokeaid_last_save_ms`` (click to response handled).

Targets: first render median < 1000 ms, save median < 100 ms.
Usage: ``.venv/bin/python bench/editor.py [--loads 5] [--saves 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _django import free_port, platform_env, start_platform, wait_http

SHAPE = (25, 256, 256)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TARGETS = {"first_render_ms_median": 1000.0, "save_ms_median": 100.0}


def prepare(work: Path) -> tuple[dict[str, str], int, str]:
    """Migrates a fresh SQLite, stores the phantom case; returns env, case id, session key."""
    env = platform_env(work)
    import django

    django.setup()
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from accounts.services import user_create
    from cases.phantoms import generate_case
    from cases.services.case import case_create
    from cases.services.series import series_create_from_phantom

    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    phantom = generate_case(etiology="cardioembolic", seed=2025, shape=SHAPE)
    user = user_create(username="bench", password="bench-pass-123", roles=["neurologist"])  # noqa: S106
    case = case_create(user=user, code="BENCH-0002", etiology="cardioembolic", confirmed=True)
    series_create_from_phantom(case=case, phantom=phantom, uid_stem="2025")
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return env, case.pk, str(session.session_key)


def run(loads: int, saves: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="strokeaid-bench-editor-"))
    server = None
    try:
        env, case_id, session_key = prepare(work)
        port = free_port()
        server = start_platform(env, port, work / "server.log")
        wait_http(port, "/healthz")
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/annotation/cases/{case_id}/"
        cookie = {"name": "sessionid", "value": session_key, "url": base}
        first_render: list[float] = []
        save_ms: list[float] = []
        server_ms: list[float] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            # Warm-up load (server imports, first-request work) is not counted.
            for i in range(loads + 1):
                context = browser.new_context(viewport={"width": 1600, "height": 900})
                context.add_cookies([cookie])
                page = context.new_page()
                page.add_init_script("window.STROKEAID_AUTOSAVE_MS = 0;")
                page.goto(url)
                page.wait_for_function("window.__strokeaid_first_render_ms > 0", timeout=30000)
                value = page.evaluate("window.__strokeaid_first_render_ms")
                if i > 0:
                    first_render.append(float(value))
                if i < loads:
                    context.close()
            # Saves: every voxel labelled (the largest body), then a save per round.
            page.wait_for_selector("body[data-editor-ready='1']")
            for i in range(saves + 1):
                page.evaluate(
                    """(v) => { const vp = strokeaidEditor.viewport('DWI');
                        vp.s.labels.fill(v); vp.s.dirty = true; vp.s.version++; }""",
                    1 + i % 2,
                )
                page.evaluate("window.__strokeaid_last_save_ms = 0")
                page.locator("#save-button").click()
                page.wait_for_function("window.__strokeaid_last_save_ms > 0", timeout=30000)
                status = page.locator("#save-status").inner_text()
                if status != "Saved":
                    raise RuntimeError(f"save failed: {status}")
                if i > 0:
                    save_ms.append(float(page.evaluate("window.__strokeaid_last_save_ms")))
                    server_ms.append(
                        float(page.evaluate("window.__strokeaid_last_save_server_ms") or 0)
                    )
            context.close()
            browser.close()
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "editor",
        "shape": list(SHAPE),
        "series": 3,
        "loads": loads,
        "saves": saves,
        "first_render_ms": [round(v, 1) for v in first_render],
        "first_render_ms_median": round(statistics.median(first_render), 1),
        "save_ms": [round(v, 1) for v in save_ms],
        "save_ms_median": round(statistics.median(save_ms), 1),
        "save_server_ms_median": round(statistics.median(server_ms), 1),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "targets": TARGETS,
    }
    result["pass"] = all(result[k] < v for k, v in TARGETS.items())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--saves", type=int, default=5)
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        print(json.dumps({"benchmark": "editor", "skipped": f"no chromium at {CHROMIUM}"}))
        return
    print(json.dumps(run(args.loads, args.saves), indent=2))


if __name__ == "__main__":
    main()
