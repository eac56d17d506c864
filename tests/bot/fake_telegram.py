"""An in-process fake of the Telegram Bot API (aiohttp): the methods the bot calls, the file
download path, a queue of updates to hand out, and a record of everything the bot sent."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

BOT = {"id": 4242, "is_bot": True, "first_name": "Stroke AID", "username": "strokeaid_test_bot"}


class FakeTelegram:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._messages = itertools.count(100)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    # --- test side ------------------------------------------------------------------------------
    def _user(self, chat: int, language: str) -> dict[str, Any]:
        return {"id": chat, "is_bot": False, "first_name": "Doctor", "language_code": language}

    def _message(self, chat: int, language: str, **fields: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._messages),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "from": self._user(chat, language),
            **fields,
        }

    def _push(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.updates.append({"update_id": next(self._ids), "message": message})

    def send_text(self, chat: int, text: str, *, language: str = "en") -> None:
        entities = []
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        self._push(self._message(chat, language, text=text, entities=entities))

    def send_document(
        self,
        chat: int,
        name: str,
        data: bytes,
        *,
        caption: str | None = None,
        declared_size: int | None = None,
        language: str = "en",
    ) -> None:
        file_id = f"file{len(self.files) + 1}"
        self.files[file_id] = data
        document = {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": name,
            "file_size": declared_size if declared_size is not None else len(data),
        }
        fields: dict[str, Any] = {"document": document}
        if caption:
            fields["caption"] = caption
        self._push(self._message(chat, language, **fields))

    def send_photo(self, chat: int, *, language: str = "en") -> None:
        photo = [{"file_id": "p1", "file_unique_id": "up1", "width": 90, "height": 60}]
        self._push(self._message(chat, language, photo=photo))

    def sent(self, chat: int, method: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                p
                for m, p in self.calls
                if str(p.get("chat_id")) == str(chat) and (method is None or m == method)
            ]

    def texts(self, chat: int) -> list[str]:
        out = []
        for method, params in list(self.calls):
            if str(params.get("chat_id")) != str(chat):
                continue
            if method in ("sendMessage", "editMessageText"):
                out.append(str(params.get("text", "")))
            elif method == "sendPhoto":
                out.append(str(params.get("caption", "")))
        return out

    def wait_for(self, chat: int, predicate: Callable[[str], bool], timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.texts(chat):
                if predicate(text):
                    return text
            time.sleep(0.05)
        raise AssertionError(f"no matching reply; the bot said: {self.texts(chat)}")

    def wait_until(self, condition: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"condition not met; the bot said: {list(self.calls)[-5:]}")

    # --- server side ----------------------------------------------------------------------------
    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        if request.content_type == "application/json":
            params = await request.json()
        else:
            form = await request.post()
            for key, value in form.items():
                if hasattr(value, "file"):
                    params[key] = value.file.read()
                else:
                    params[key] = value
        if method == "getUpdates":
            return await self._get_updates(params)
        with self._lock:
            self.calls.append((method, params))
        return web.json_response({"ok": True, "result": self._result(method, params)})

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 1.0)
        while True:
            with self._lock:
                ready = [u for u in self.updates if u["update_id"] >= offset]
            if ready or time.monotonic() >= deadline:
                return web.json_response({"ok": True, "result": ready})
            await asyncio.sleep(0.05)

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return BOT
        if method in ("deleteWebhook", "setWebhook", "setMyCommands", "answerCallbackQuery"):
            return True
        if method == "getFile":
            file_id = str(params["file_id"])
            return {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(self.files.get(file_id, b"")),
                "file_path": f"documents/{file_id}",
            }
        chat = {"id": int(params.get("chat_id") or 0), "type": "private"}
        message: dict[str, Any] = {
            "message_id": int(params.get("message_id") or next(self._messages)),
            "date": int(time.time()),
            "chat": chat,
            "from": BOT,
        }
        if "text" in params:
            message["text"] = str(params["text"])
        if method == "sendPhoto":
            message["photo"] = [
                {"file_id": "sent", "file_unique_id": "sent", "width": 1, "height": 1}
            ]
        return message

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=64 * 1024 * 1024)
            app.router.add_route("*", "/bot{token}/{method}", self._method)
            app.router.add_get("/file/bot{token}/{path:.*}", self._file)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            self._loop.run_until_complete(site.start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def down() -> None:
            assert self._runner is not None
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(down(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dumps(value: Any) -> str:
    return json.dumps(value)
