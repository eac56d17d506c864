"""Stroke AID bot: time from the document update to the photo reply for a 25-slice phantom
study (DWI, ADC and FLAIR as one DICOM zip), as a ratio to the same upload + prediction +
report picture done directly over REST (same server, same run). Target: ratio <= 1.2.

Both paths run against the platform served as deployed (``manage.py serve``: uvicorn plus the
django-q2 workers, ORM broker, SQLite) with a registered untrained U-Net (speed does not
depend on the weights). The bot is the real python-telegram-bot application against the
in-process fake Bot API of the test suite; both paths poll the prediction every 0.2 s. The
runs alternate, median of --repeats each; JSON on stdout.

    python bench/bot.py [--repeats 3] [--slices 25]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from _django import (
    ROOT,
    free_port,
    platform_setup,
    ratio_report,
    rest_upload_predict,
    user_with_model,
    wait_http,
)

POLL = 0.2


def _study_zip(slices: int, work: Path) -> bytes:
    from cases.phantoms import generate_case
    from cases.phantoms.dicom import write_dicom_series

    phantom = generate_case(etiology="cardioembolic", seed=3, shape=(slices, 128, 128))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for kind in ("DWI", "ADC", "FLAIR"):
            folder = work / kind
            folder.mkdir()
            write_dicom_series(phantom, kind, folder)
            for path in sorted(folder.glob("*.dcm")):
                z.writestr(f"{kind}/{path.name}", path.read_bytes())
    return out.getvalue()


def _rest_once(base: str, token: str, data: bytes, n: int) -> float:
    return rest_upload_predict(base, token, data, f"REST-{n:04d}", kind="DWI", report=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--slices", type=int, default=25)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
        work = Path(tmp)
        env = platform_setup(work)
        from bot.services import service_account_token
        from bot.telegram.app import BotConfig, StrokeAidBot
        from tests.bot.fake_telegram import FakeTelegram

        token = user_with_model(work, "bench-clinician", "clinician")
        bot_token = service_account_token()
        data = _study_zip(args.slices, work)

        import subprocess

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = work / "serve.log"
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--no-collectstatic"],
            cwd=ROOT,
            env={**env, "TELEGRAM_BOT_TOKEN": ""},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        telegram = FakeTelegram()
        telegram.start()
        stop_bot = None
        try:
            wait_http(port, "/healthz")
            bot = StrokeAidBot(
                BotConfig(
                    token="1:BENCH",  # noqa: S106 - the fake Bot API takes any
                    telegram_api_url=telegram.url,
                    platform_url=base,
                    platform_token=bot_token,
                    studies_per_hour=1000,
                    poll_seconds=POLL,
                )
            )
            stop_bot = bot.start_in_thread()
            import httpx

            code = httpx.post(
                f"{base}/api/bot/link-codes/", headers={"Authorization": f"Token {token}"}
            ).json()["code"]
            chat = 9001
            telegram.send_text(chat, f"/link {code}")
            telegram.wait_for(chat, lambda t: "now linked" in t)

            _rest_once(base, token, data, 0)  # warm: model load, first registration to MNI
            rest, via_bot = [], []
            for n in range(1, args.repeats + 1):
                rest.append(_rest_once(base, token, data, n))
                before = len(telegram.sent(chat, "sendPhoto"))
                t0 = time.perf_counter()
                telegram.send_document(chat, "study.zip", data)
                telegram.wait_until(
                    lambda before=before: len(telegram.sent(chat, "sendPhoto")) > before,
                    timeout=600,
                )
                via_bot.append(time.perf_counter() - t0)
        finally:
            if stop_bot is not None:
                stop_bot()
            server.terminate()
            server.wait(30)
            telegram.stop()
        report = ratio_report(
            "bot", "bot", via_bot, rest, 1.2, slices=args.slices, repeats=args.repeats
        )
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
