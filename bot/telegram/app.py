"""The Stroke AID bot: python-telegram-bot handlers over the platform's REST API.

A clinician sends a study as documents (a ``.zip`` of DICOM files, ``.dcm`` or ``.nii`` /
``.nii.gz`` files; the caption names the kind, DWI by default) and gets back the etiology, the
other candidates, the lesions and the report picture, with a link to the case page. Progress
is one message edited in place: received -> de-identified -> predicting -> done.

Everything the bot knows lives in the platform (chat links, cases, predictions); this process
keeps only a per-chat rate limit in memory. Files are held in memory (the Bot API never gives
more than 20 MB) and never written to disk; logs carry no file names, codes or tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.telegram.platform import Platform, PlatformDown, PlatformError

logger = logging.getLogger("strokeaid.bot")

#: The Bot API lets a bot download files up to this size.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Roles that may ask for predictions from the chat.
PREDICT_ROLES = frozenset({"clinician", "neurologist", "data_manager"})
KINDS = ("DWI", "ADC", "FLAIR")
_STUDY_SUFFIXES = (".zip", ".nii", ".nii.gz", ".dcm")
#: Documents of one album (media group) arrive as separate updates: wait this long for the rest.
ALBUM_WAIT_SECONDS = 1.5


def _flag_text(flag: str) -> str:
    """The platform's machine-readable prediction warnings, in words."""
    texts = {
        "implausible_lesion_volume": _(
            "The predicted lesion covers an implausible share of the brain: not an answer."
        ),
        "no_head": _("No head was found in the images: not an answer."),
    }
    return texts.get(flag, flag)


@dataclass
class BotConfig:
    token: str
    telegram_api_url: str
    platform_url: str
    platform_token: str
    studies_per_hour: int = 5
    poll_seconds: float = 1.0
    prediction_timeout: float = 600.0


@dataclass
class _Album:
    documents: list[Any] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class StrokeAidBot:
    """Holds the platform client and the per-chat rate limit; its methods are the handlers."""

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.platform = Platform(config.platform_url, config.platform_token)
        self._studies: dict[int, deque[float]] = defaultdict(deque)
        self._albums: dict[str, _Album] = {}

    # --- plumbing -------------------------------------------------------------------------------
    def build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        root = self.config.telegram_api_url.rstrip("/")
        app = (
            ApplicationBuilder()
            .token(self.config.token)
            .base_url(f"{root}/bot")
            .base_file_url(f"{root}/file/bot")
            .concurrent_updates(True)
            .post_shutdown(self._shutdown)
            .build()
        )
        app.add_handler(CommandHandler("start", self.start))
        app.add_handler(CommandHandler("help", self.start))
        app.add_handler(CommandHandler("link", self.link))
        app.add_handler(CommandHandler("unlink", self.unlink))
        app.add_handler(CommandHandler("cases", self.cases))
        app.add_handler(CommandHandler("status", self.status))
        app.add_handler(CommandHandler("lang", self.lang))
        app.add_handler(MessageHandler(filters.Document.ALL, self.document))
        app.add_handler(MessageHandler(filters.PHOTO, self.photo))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.start))
        app.add_error_handler(self._error)
        return app

    def start_in_thread(self, *, poll_timeout: int = 1) -> Callable[[], None]:
        """Runs the bot in a thread with its own event loop (tests, benchmarks, embedding);
        returns the function that stops it (polling ends, running handlers finish)."""
        app = self.build()
        loop = asyncio.new_event_loop()
        stop = asyncio.Event()
        started = threading.Event()

        async def main() -> None:
            await app.initialize()
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=poll_timeout)
            started.set()
            await stop.wait()
            await app.updater.stop()
            await app.stop()
            await app.shutdown()

        thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
        thread.start()
        if not started.wait(30):
            raise RuntimeError("the bot did not start")

        def _stop() -> None:
            loop.call_soon_threadsafe(stop.set)
            thread.join(60)

        return _stop

    async def _shutdown(self, app: Any) -> None:
        await self.platform.close()

    async def _error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        # The exception type only: messages may quote URLs that carry the bot's token.
        logger.warning("bot handler failed: %s", type(context.error).__name__)

    async def _language(self, update: Update, link: dict[str, Any] | None) -> str:
        if link and link.get("language"):
            return str(link["language"])
        code = (update.effective_user.language_code or "") if update.effective_user else ""
        return "ru" if code.startswith("ru") else "en"

    async def _link(self, chat: int) -> dict[str, Any] | None:
        return await self.platform.link_get(chat)

    @staticmethod
    def _chat(update: Update) -> int:
        assert update.effective_chat is not None
        return int(update.effective_chat.id)

    async def _reply(self, update: Update, text: str) -> Any:
        assert update.effective_message is not None
        return await update.effective_message.reply_text(text)

    # --- commands -------------------------------------------------------------------------------
    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        try:
            link = await self._link(chat)
        except PlatformDown:
            link = None
        with translation.override(await self._language(update, link)):
            if link is None:
                text = _(
                    "Stroke AID bot: send a brain MRI study and get the model's etiology "
                    "answer.\n\nThis chat is not linked to a Stroke AID account yet. Sign in "
                    "on the platform, open “Telegram bot”, create a code and send it here:\n"
                    "/link <code>"
                )
            else:
                text = _(
                    "Signed in as %(user)s.\n\nSend a study as a document: a .zip of DICOM "
                    "files, or .nii/.nii.gz files. The caption may name the series (DWI, ADC "
                    "or FLAIR; DWI by default).\n\n/cases your last studies\n/status <code> "
                    "one study\n/lang en|ru language\n/unlink end this link\n/help this text"
                ) % {"user": link["username"]}
            await self._reply(update, text)

    async def link(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        lang = await self._language(update, None)
        with translation.override(lang):
            if not context.args:
                await self._reply(update, _("Send the code from your profile page: /link <code>"))
                return
            try:
                linked = await self.platform.link(chat, context.args[0])
            except PlatformError as exc:
                await self._reply(update, exc.message)
                return
            except PlatformDown:
                await self._reply(update, _("Stroke AID is not answering. Try again later."))
                return
        with translation.override(str(linked.get("language") or lang)):
            await self._reply(
                update,
                _("This chat is now linked to %(user)s. Send a study, or /help.")
                % {"user": linked["username"]},
            )

    async def unlink(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = self._chat(update)
        link = await self._safe_link(update)
        with translation.override(await self._language(update, link)):
            try:
                done = await self.platform.unlink(chat)
            except PlatformDown:
                await self._reply(update, _("Stroke AID is not answering. Try again later."))
                return
            await self._reply(
                update,
                _("This chat is no longer linked.") if done else _("This chat was not linked."),
            )

    async def _safe_link(self, update: Update) -> dict[str, Any] | None:
        try:
            return await self._link(self._chat(update))
        except PlatformDown:
            return None

    async def _linked(self, update: Update) -> tuple[dict[str, Any], str] | None:
        """The chat's link and language, or None after telling the chat why not."""
        try:
            link = await self._link(self._chat(update))
        except PlatformDown:
            with translation.override(await self._language(update, None)):
                await self._reply(update, _("Stroke AID is not answering. Try again later."))
            return None
        lang = await self._language(update, link)
        if link is None:
            with translation.override(lang):
                await self._reply(
                    update,
                    _(
                        "This chat is not linked to a Stroke AID account. Send /link <code> (the "
                        "code is on your profile page)."
                    ),
                )
            return None
        return link, lang

    async def lang(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        found = await self._linked(update)
        if found is None:
            return
        _link, lang = found
        wanted = (context.args[0].lower() if context.args else "").strip()
        if wanted not in ("en", "ru"):
            with translation.override(lang):
                await self._reply(update, _("Choose a language: /lang en or /lang ru"))
            return
        try:
            await self.platform.language_set(self._chat(update), wanted)
        except (PlatformDown, PlatformError):
            with translation.override(lang):
                await self._reply(update, _("Stroke AID is not answering. Try again later."))
            return
        with translation.override(wanted):
            await self._reply(update, _("I will answer in English from now on."))

    async def cases(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        found = await self._linked(update)
        if found is None:
            return
        _link, lang = found
        chat = self._chat(update)
        with translation.override(lang):
            try:
                rows = (await self.platform.cases(chat, lang, q="TG-"))[:10]
                labels = await self.platform.labels(chat, lang)
                lines = []
                for case in rows:
                    predictions = await self.platform.predictions(chat, lang, int(case["id"]))
                    lines.append(f"{case['code']}: {self._result_line(predictions, labels)}")
            except (PlatformDown, PlatformError) as exc:
                await self._say_failure(update, exc)
                return
            await self._reply(
                update,
                "\n".join([_("Your last studies:"), *lines]) if lines else _("No study yet."),
            )

    async def _say_failure(self, update: Update, exc: PlatformDown | PlatformError) -> None:
        """The platform refused (its own message) or did not answer (try again later)."""
        if isinstance(exc, PlatformError):
            await self._reply(update, exc.message)
        else:
            await self._reply(update, _("Stroke AID is not answering. Try again later."))

    def _result_line(self, predictions: list[dict[str, Any]], labels: dict[str, Any]) -> str:
        if not predictions:
            return _("no prediction")
        latest = predictions[0]
        if latest.get("status") != "done":
            return _("prediction %(status)s") % {"status": latest.get("status")}
        name = latest.get("etiology")
        if not name:
            return _("no lesion found")
        title = labels.get(name, {}).get("title", name)
        return f"{title} {round(100 * float(latest.get('confidence') or 0))} %"

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        found = await self._linked(update)
        if found is None:
            return
        _link, lang = found
        chat = self._chat(update)
        with translation.override(lang):
            code = (context.args[0] if context.args else "").strip()
            if not code:
                await self._reply(update, _("Name the study: /status <code>"))
                return
            try:
                match = [
                    c for c in await self.platform.cases(chat, lang, q=code) if c["code"] == code
                ]
                if not match:
                    await self._reply(update, _("No study with this code."))
                    return
                case = match[0]
                predictions = await self.platform.predictions(chat, lang, int(case["id"]))
                labels = await self.platform.labels(chat, lang)
            except (PlatformDown, PlatformError) as exc:
                await self._say_failure(update, exc)
                return
            await self._reply(
                update,
                f"{code}: {self._result_line(predictions, labels)}\n"
                f"{self.platform.case_url(int(case['id']))}",
            )

    # --- studies --------------------------------------------------------------------------------
    async def photo(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        link = await self._safe_link(update)
        with translation.override(await self._language(update, link)):
            await self._reply(
                update,
                _(
                    "A photo cannot be analysed: Telegram compresses it and a picture of a "
                    "screen has lost the voxel values, the geometry and the series the model "
                    "needs. Send the study's files as a document instead: a .zip of the DICOM "
                    "export, or .nii/.nii.gz files (attach them with “File”, not “Photo”)."
                ),
            )

    def _rate_limited(self, chat: int) -> bool:
        now = time.monotonic()
        window = self._studies[chat]
        while window and now - window[0] > 3600:
            window.popleft()
        if len(window) >= self.config.studies_per_hour:
            return True
        window.append(now)
        return False

    async def document(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None and message.document is not None
        group = message.media_group_id
        if group is None:
            await self._study(update, context, [message])
            return
        # An album: collect its documents, then handle them as one study.
        album = self._albums.setdefault(group, _Album())
        album.documents.append(message)
        if album.task is None:

            async def later() -> None:
                await asyncio.sleep(ALBUM_WAIT_SECONDS)
                self._albums.pop(group, None)
                await self._study(update, context, album.documents)

            album.task = asyncio.create_task(later())

    @staticmethod
    def _kind(caption: str | None, name: str) -> str:
        for text in (caption or "", name):
            found = re.search(r"\b(DWI|ADC|FLAIR|TRACE)\b", text.upper().replace("_", " "))
            if found:
                return "DWI" if found.group(1) == "TRACE" else found.group(1)
        return "DWI"

    async def _study(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE, messages: list[Any]
    ) -> None:
        found = await self._linked(update)
        if found is None:
            return
        link, lang = found
        chat = self._chat(update)
        with translation.override(lang):
            if not PREDICT_ROLES & set(link.get("roles") or []):
                await self._reply(
                    update,
                    _(
                        "Your account's role may not request predictions (clinicians, "
                        "neurologists and data managers may)."
                    ),
                )
                return
            documents = [m.document for m in messages]
            too_big = [d for d in documents if (d.file_size or 0) > MAX_FILE_BYTES]
            if too_big:
                await self._reply(
                    update,
                    _(
                        "The file is larger than the 20 MB a bot may receive. Upload the study on "
                        "the web instead: %(url)s"
                    )
                    % {"url": self.platform.upload_url()},
                )
                return
            names = [(d.file_name or "").lower() for d in documents]
            if not all(n.endswith(_STUDY_SUFFIXES) for n in names):
                await self._reply(
                    update,
                    _("Send a .zip of DICOM files, .dcm files or .nii/.nii.gz files as documents."),
                )
                return
            if self._rate_limited(chat):
                await self._reply(
                    update,
                    _(
                        "You have sent %(n)s studies in the last hour, the most this chat may. "
                        "Try again later."
                    )
                    % {"n": self.config.studies_per_hour},
                )
                return
            await self._run_study(update, context, chat, lang, messages)

    async def _run_study(
        self,
        update: Update,
        context: ContextTypes.DEFAULT_TYPE,
        chat: int,
        lang: str,
        messages: list[Any],
    ) -> None:
        code = "TG-" + secrets.token_hex(4).upper()
        progress = await self._reply(
            update, _("Study %(code)s: received, uploading…") % {"code": code}
        )

        async def step(text: str) -> None:
            # The progress line is a courtesy: never fail the study on it.
            with contextlib.suppress(TelegramError):
                await progress.edit_text(text)

        case: dict[str, Any] | None = None
        prediction: dict[str, Any] | None = None
        try:
            case = await self.platform.case_create(chat, lang, code)
            series = 0
            for message in messages:
                document = message.document
                file = await context.bot.get_file(document.file_id)
                data = bytes(await file.download_as_bytearray())
                kind = self._kind(message.caption, document.file_name or "")
                result = await self.platform.upload(
                    chat,
                    lang,
                    int(case["id"]),
                    [(document.file_name or "study", data)],
                    kind=kind,
                    poll_seconds=self.config.poll_seconds,
                )
                del data
                series += len(result.get("series") or [])
            await step(
                _("Study %(code)s: de-identified and stored (%(n)s series). Predicting…")
                % {"code": code, "n": series}
            )
            prediction = await self.platform.prediction_request(chat, lang, int(case["id"]))
            prediction = await self._wait(chat, lang, int(prediction["id"]))
            if prediction.get("status") != "done":
                await step(
                    _("Study %(code)s: the prediction failed: %(error)s")
                    % {"code": code, "error": prediction.get("error") or "–"}
                )
                return
            picture = await self.platform.report_png(chat, lang, int(prediction["id"]))
            labels = await self.platform.labels(chat, lang)
            await context.bot.send_photo(
                chat_id=chat,
                photo=picture,
                caption=self._caption(code, int(case["id"]), prediction, labels),
                parse_mode=ParseMode.HTML,
            )
            await step(_("Study %(code)s: done.") % {"code": code})
        except PlatformError as exc:
            await step(
                _("Study %(code)s: refused by Stroke AID: %(why)s")
                % {"code": code, "why": exc.message}
            )
        except PlatformDown:
            if prediction is not None and case is not None:
                await step(
                    _(
                        "Study %(code)s: Stroke AID stopped answering, but the prediction was "
                        "requested and goes on there. Ask later: /status %(code)s"
                    )
                    % {"code": code}
                )
            else:
                await step(
                    _("Study %(code)s: Stroke AID is not answering. Try again later.")
                    % {"code": code}
                )
        except TelegramError as exc:
            logger.warning("telegram error during a study: %s", type(exc).__name__)
            await step(
                _("Study %(code)s: the file could not be received from Telegram.") % {"code": code}
            )

    async def _wait(self, chat: int, lang: str, prediction_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.config.prediction_timeout
        while True:
            found = await self.platform.prediction_get(chat, lang, prediction_id)
            if found.get("status") in ("done", "failed", "interrupted"):
                return found
            if time.monotonic() > deadline:
                return {**found, "status": "failed", "error": _("no answer in time")}
            await asyncio.sleep(self.config.poll_seconds)

    def _caption(
        self, code: str, case_id: int, prediction: dict[str, Any], labels: dict[str, Any]
    ) -> str:
        def title(name: str) -> str:
            return str(labels.get(name, {}).get("title", name))

        lines = [f"<b>{code}</b>"]
        name = prediction.get("etiology")
        if name:
            lines.append(
                _("Etiology: <b>%(title)s</b>, confidence %(p)s %%")
                % {"title": title(name), "p": round(100 * float(prediction.get("confidence") or 0))}
            )
            others = sorted(
                (
                    (n, float(p))
                    for n, p in (prediction.get("probabilities") or {}).items()
                    if n != name
                ),
                key=lambda kv: -kv[1],
            )
            if others:
                lines.append(
                    _("Other candidates: %(list)s")
                    % {"list": ", ".join(f"{title(n)} {round(100 * p)} %" for n, p in others[:3])}
                )
        else:
            lines.append(_("No lesion found."))
        lesions = prediction.get("lesions") or {}
        if lesions.get("count") is not None:
            lines.append(
                _("Lesions: %(n)s, %(ml)s ml in all")
                % {"n": lesions["count"], "ml": f"{float(lesions.get('total_ml') or 0):.2f}"}
            )
        for flag in prediction.get("flags") or []:
            lines.append("⚠ " + _flag_text(str(flag)))
        lines.append(_("Not a diagnosis: a research model's answer for a clinician to weigh."))
        lines.append(self.platform.case_url(case_id))
        return "\n".join(lines)[:1024]
