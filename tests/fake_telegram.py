"""A fake Telegram Bot API server on 127.0.0.1, for driving the real PTB Application.

It speaks the Bot API's HTTP protocol (`POST /bot<token>/<method>`, JSON or
form parameters, `{"ok": ..., "result": ...}` answers, 400/404/429 errors with
`parameters.retry_after`) and keeps the state a test asserts on: messages the
bot sent with their ids and keyboards, answered callback queries, chat
actions, the command menu. Tests play the users: `command()` and `click()`
queue updates that a long-polling getUpdates hands out like the real one
(held until an update arrives or the poll's timeout ends).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_ID = 123456
BOT_USERNAME = "ThoTestBot"
# Parameters that arrive JSON-encoded inside form data.
JSON_PARAMS = {
    "reply_markup",
    "allowed_updates",
    "commands",
    "entities",
    "reply_parameters",
    "link_preview_options",
    "scope",
    "results",
    "button",
}
INT_PARAMS = {"chat_id", "message_id", "offset", "limit", "timeout", "cache_time"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int = 200


@dataclass
class FakeTelegram:
    token: str = TOKEN
    max_poll_seconds: float = 0.25  # hold getUpdates at most this long, whatever the bot asks
    calls: list[Call] = field(default_factory=list)
    messages: dict[tuple[int, int], dict] = field(default_factory=dict)  # (chat id, message id) -> message
    answers: dict[str, dict] = field(default_factory=dict)  # callback query id -> answer params
    commands: list[dict] = field(default_factory=list)
    photos: dict[tuple[int, int], bytes] = field(default_factory=dict)  # (chat id, message id) -> the PNG sent
    inline_answers: dict[str, dict] = field(default_factory=dict)  # inline query id -> answerInlineQuery params

    def __post_init__(self) -> None:
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict] = {}
        self._changed = asyncio.Condition()
        self._failures: dict[str, list[tuple[int, int]]] = {}  # method -> (status, retry_after) coming
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # -- server ------------------------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        failures = self._failures.get(method)
        if failures:
            status, retry_after = failures.pop(0)
            await self._record(Call(method, params, status))
            if status == 429:
                return _error(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
            return _error(status, "Internal Server Error")
        try:
            result = await handler(params)
        except ApiError as exc:
            await self._record(Call(method, params, exc.status))
            return _error(exc.status, exc.description)
        await self._record(Call(method, params))
        return web.json_response({"ok": True, "result": result})

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    # -- Bot API methods ---------------------------------------------------------------------------
    async def api_getMe(self, params: dict) -> dict:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Thơ bot",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def api_deleteWebhook(self, params: dict) -> bool:
        return True

    async def api_setMyCommands(self, params: dict) -> bool:
        self.commands = list(params.get("commands", []))
        return True

    async def api_getUpdates(self, params: dict) -> list[dict]:
        offset = params.get("offset") or 0
        self._updates = [u for u in self._updates if u["update_id"] >= offset]  # confirmed ones are gone
        timeout = min(float(params.get("timeout") or 0), self.max_poll_seconds)
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._updates)), timeout)
            except TimeoutError:
                pass
            return list(self._updates[: params.get("limit") or 100])

    async def api_sendMessage(self, params: dict) -> dict:
        return self._sent(params, text=params["text"])

    def _sent(self, params: dict, **content: Any) -> dict:
        """A message the bot sent to params["chat_id"], with its keyboard; kept in `messages`."""
        chat_id = params["chat_id"]
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chats.get(chat_id, {"id": chat_id, "type": "private"}),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Thơ bot", "username": BOT_USERNAME},
            **content,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message

    async def api_sendPhoto(self, params: dict) -> dict:
        """A photo uploaded as a file: kept in `photos` by (chat id, message id), its bytes as sent."""
        photo = params.get("photo")
        if not isinstance(photo, bytes):
            raise ApiError(400, "Bad Request: there is no photo in the request")
        content: dict[str, Any] = {
            "photo": [{"file_id": f"photo-{len(self.photos)}", "file_unique_id": "u", "width": 1, "height": 1}]
        }
        if params.get("caption"):
            content["caption"] = params["caption"]
        message = self._sent(params, **content)
        self.photos[(params["chat_id"], message["message_id"])] = photo
        return message

    async def api_editMessageText(self, params: dict) -> dict:
        message = self._message(params)
        markup = params.get("reply_markup")
        if message["text"] == params["text"] and message.get("reply_markup") == markup:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        message["text"] = params["text"]
        _set_markup(message, markup)
        return message

    async def api_editMessageReplyMarkup(self, params: dict) -> dict:
        message = self._message(params)
        if message.get("reply_markup") == params.get("reply_markup"):
            raise ApiError(400, "Bad Request: message is not modified")
        _set_markup(message, params.get("reply_markup"))
        return message

    async def api_answerCallbackQuery(self, params: dict) -> bool:
        query_id = params["callback_query_id"]
        if query_id in self.answers:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self.answers[query_id] = params
        return True

    async def api_answerInlineQuery(self, params: dict) -> bool:
        query_id = params["inline_query_id"]
        if query_id in self.inline_answers:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self.inline_answers[query_id] = params
        return True

    async def api_sendChatAction(self, params: dict) -> bool:
        return True

    def _message(self, params: dict) -> dict:
        message = self.messages.get((params.get("chat_id"), params.get("message_id")))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        return message

    # -- the test plays the users ------------------------------------------------------------------
    @staticmethod
    def user(user_id: int, name: str = "Lan") -> dict:
        return {"id": user_id, "is_bot": False, "first_name": name, "language_code": "vi"}

    # The account Telegram sends anonymous group admins' messages from, in every group.
    ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}

    def group(self, chat_id: int = -100200300, title: str = "Nhóm thơ") -> dict:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        self._chats[chat_id] = chat
        return chat

    def fail_next(self, method: str, retry_after: int = 1, times: int = 1, status: int = 429) -> None:
        """The next `times` calls of `method` fail: 429 Too Many Requests with retry_after, or `status`."""
        self._failures.setdefault(method, []).extend([(status, retry_after)] * times)

    async def command(self, user: dict, text: str, chat: dict | None = None, sender_chat: dict | None = None) -> dict:
        """The user sends `text` (starting with /command) in a private chat or a group; returns the message.
        `sender_chat`: sent on behalf of a chat (an anonymous group admin posts as the group; `user` is then
        Telegram's GroupAnonymousBot)."""
        chat = chat or self._chats.setdefault(
            user["id"], {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        )
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
            "text": text,
        }
        if sender_chat is not None:
            message["sender_chat"] = sender_chat
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0] if text.strip() else text
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}
            ]
        await self._push({"message": message})
        return message

    async def click(self, user: dict, message: dict, data: str) -> str:
        """The user presses the inline button with callback_data `data`; returns the query id."""
        return await self._press(user, data, message=dict(message))

    async def click_inline(self, user: dict, inline_message_id: str, data: str) -> str:
        """The user presses a button of a message sent through inline mode: Telegram sends the
        inline_message_id, not the message; returns the query id."""
        return await self._press(user, data, inline_message_id=inline_message_id)

    async def _press(self, user: dict, data: str, **where: Any) -> str:
        query_id = str(next(self._callback_ids))
        await self._push(
            {"callback_query": {"id": query_id, "from": user, "chat_instance": "1", "data": data, **where}}
        )
        return query_id

    async def edit(self, message: dict, text: str) -> None:
        """The user edits a message they sent (`message`, as `command` returned it)."""
        edited = {**message, "text": text, "edit_date": int(time.time())}
        if text.startswith("/"):
            edited["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0].encode("utf-16-le")) // 2}
            ]
        await self._push({"edited_message": edited})

    async def inline_query(self, user: dict, text: str) -> str:
        """The user types `@Bot <text>` in some chat; returns the inline query id."""
        query_id = f"iq{next(self._callback_ids)}"
        await self._push({"inline_query": {"id": query_id, "from": user, "query": text, "offset": ""}})
        return query_id

    async def _push(self, update: dict) -> None:
        async with self._changed:
            self._updates.append({"update_id": next(self._update_ids), **update})
            self._changed.notify_all()

    # -- what the bot did --------------------------------------------------------------------------
    async def wait_for(self, condition: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Wait until condition() is truthy (re-checked after every API call); returns its value."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)
            return condition()

    def sent_to(self, chat_id: int) -> list[dict]:
        return [m for (c, _), m in sorted(self.messages.items()) if c == chat_id]

    async def reply(
        self, user: dict, text: str, chat: dict | None = None, timeout: float = 30.0, sender_chat: dict | None = None
    ) -> dict:
        """Send a command and wait for the bot's next message in that chat."""
        chat_id = (chat or {"id": user["id"]})["id"]
        before = len(self.sent_to(chat_id))
        await self.command(user, text, chat, sender_chat)
        return await self.wait_for(lambda: (self.sent_to(chat_id)[before:] or [None])[0], timeout)

    async def answer(self, query_id: str, timeout: float = 30.0) -> dict:
        """Wait for the bot to answer a callback query."""
        return await self.wait_for(lambda: self.answers.get(query_id), timeout)

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]


class ApiError(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, **parameters: Any) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


def _set_markup(message: dict, markup: dict | None) -> None:
    if markup:
        message["reply_markup"] = markup
    else:
        message.pop("reply_markup", None)


async def _params(request: web.Request) -> dict[str, Any]:
    """JSON body, query string or form data -> typed parameters."""
    if request.content_type == "application/json":
        return await request.json()
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    if request.can_read_body:
        for key, value in (await request.post()).items():
            if isinstance(value, str):
                raw[key] = value
            else:  # an uploaded file (multipart/form-data), e.g. sendPhoto's photo
                files[key] = value.file.read()
    params: dict[str, Any] = dict(files)
    for key, value in raw.items():
        if key in JSON_PARAMS:
            value = json.loads(value)
        elif key in INT_PARAMS:
            value = int(value)
        params[key] = value
    return params
