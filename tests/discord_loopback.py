"""A loopback Discord: gateway (WebSocket) and HTTP API on 127.0.0.1, for the real client end to end.

Only what a slash-command bot touches: login (`/users/@me`,
`/oauth2/applications/@me`), command sync, the gateway handshake (HELLO,
IDENTIFY, READY, heartbeats), INTERACTION_CREATE events that the test sends,
interaction callbacks and webhook follow-ups/edits, which are kept as messages.
Point discord.py at it with `Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = "900000000000000001"
BOT_USER = {
    "id": APP_ID,
    "username": "thobot",
    "discriminator": "0",
    "global_name": "Thơ bot",
    "avatar": None,
    "bot": True,
}


class LoopbackDiscord:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, json body)
        self.messages: dict[str, dict] = {}  # message id -> message payload
        self.callbacks: dict[str, list[dict]] = {}  # interaction id -> callback bodies
        self.commands: list[dict] = []
        self.originals: dict[str, str] = {}  # interaction token -> id of its original response message
        self.identified = asyncio.Event()
        self._ids = itertools.count(10**17)
        self._seq = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.http_base = self.gateway_url = ""

    def new_id(self) -> str:
        return str(next(self._ids))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{path:.*}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.http_base = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"

    async def stop(self) -> None:
        for ws in self._sockets:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- gateway -----------------------------------------------------------------------------------
    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}, "s": None, "t": None})
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            if payload["op"] == 1:  # heartbeat
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif payload["op"] == 2:  # identify
                await self.dispatch(
                    "READY",
                    {
                        "v": 10,
                        "user": BOT_USER,
                        "guilds": [],
                        "session_id": "loopback-session",
                        "resume_gateway_url": self.gateway_url,
                        "application": {"id": APP_ID, "flags": 0},
                        "private_channels": [],
                        "relationships": [],
                    },
                )
                self.identified.set()
        return ws

    async def dispatch(self, event: str, data: dict) -> None:
        for ws in self._sockets:
            if not ws.closed:
                await ws.send_json({"op": 0, "t": event, "s": next(self._seq), "d": data})

    # -- HTTP API ----------------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["path"]
        body = await request.json() if request.can_read_body and request.content_type == "application/json" else None
        if body is None and request.can_read_body:  # multipart: discord.py puts the JSON in payload_json
            form = await request.post()
            body = json.loads(form["payload_json"]) if "payload_json" in form else None
        async with self._changed:
            self.requests.append((request.method, path, body))
            self._changed.notify_all()
        parts = path.strip("/").split("/")
        if path == "/users/@me":
            return _json(BOT_USER)
        if path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": APP_ID,
                    "name": "Thơ bot",
                    "icon": None,
                    "description": "",
                    "rpc_origins": [],
                    "bot_public": True,
                    "bot_require_code_grant": False,
                    "owner": {**BOT_USER, "bot": False},
                    "verify_key": "0" * 64,
                    "flags": 0,
                    "summary": "",
                    "team": None,
                }
            )
        if parts[:1] == ["applications"] and parts[-1] == "commands" and request.method == "PUT":
            self.commands = [{**c, "id": self.new_id(), "application_id": APP_ID, "version": "1"} for c in body]
            return _json(self.commands)
        if parts[0] == "interactions" and parts[-1] == "callback":
            interaction_id, token = parts[1], parts[2]
            self.callbacks.setdefault(interaction_id, []).append(body)
            if body["type"] == 5:  # "thinking...": the original message exists, loading (flag 128)
                message_id = self.originals.setdefault(token, self.new_id())
                self.messages[message_id] = self._message(message_id, {"flags": 128})
            await self._notify()
            return _json(
                {
                    "interaction": {
                        "id": interaction_id,
                        "type": 2,
                        "response_message_loading": body["type"] == 5,
                        "response_message_ephemeral": False,
                    },
                    "resource": {"type": body["type"]},
                }
            )
        if parts[0] == "webhooks":
            token = parts[2]
            if parts[-1] == "@original" or (len(parts) == 5 and parts[3] == "messages"):
                message_id = self.originals.setdefault(token, self.new_id()) if parts[-1] == "@original" else parts[4]
                message = self.messages.setdefault(message_id, self._message(message_id, {}))
                message.update({k: v for k, v in body.items() if k in ("content", "components")})
                await self._notify()
                return _json(message)
            original = self.messages.get(self.originals.get(token, ""))
            if original is not None and original["flags"] & 128:
                # Like Discord: the first follow-up of a deferred command replaces the "thinking..." message.
                message = self._message(original["id"], body)
            else:
                message = self._message(self.new_id(), body)
            self.messages[message["id"]] = message
            await self._notify()
            return _json(message)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _message(self, message_id: str, body: dict) -> dict:
        return {
            "id": message_id,
            "channel_id": DM_CHANNEL,
            "author": BOT_USER,
            "content": body.get("content", ""),
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": body.get("flags", 0),
            "components": body.get("components", []),
        }

    async def wait_for(self, condition, timeout: float = 20.0):
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)
            return condition()

    # -- the test plays a user in a DM -------------------------------------------------------------
    async def slash(self, user: dict, name: str, **options: Any) -> str:
        """Send an INTERACTION_CREATE for /name; returns the interaction id."""
        command = next(c for c in self.commands if c["name"] == name)
        types = {o["name"]: o["type"] for o in command.get("options", [])}
        data = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": types[k], "value": v} for k, v in options.items()],
        }
        return await self._interact(user, 2, data)

    async def click(self, user: dict, message: dict, custom_id: str) -> str:
        return await self._interact(user, 3, {"custom_id": custom_id, "component_type": 2}, message=message)

    async def _interact(self, user: dict, kind: int, data: dict, **extra: Any) -> str:
        interaction_id = self.new_id()
        await self.dispatch(
            "INTERACTION_CREATE",
            {
                "id": interaction_id,
                "application_id": APP_ID,
                "type": kind,
                "token": f"token{interaction_id}",
                "version": 1,
                "channel_id": DM_CHANNEL,
                "user": user,
                "data": data,
                "locale": "vi",
                "app_permissions": "0",
                "entitlements": [],
                "context": 1,
                "attachment_size_limit": 10 << 20,
                "authorizing_integration_owners": {"0": APP_ID},
                "channel": {"id": DM_CHANNEL, "type": 1, "recipients": [user]},
                **extra,
            },
        )
        return interaction_id


DM_CHANNEL = "700000000000000001"


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py decodes a body only when Content-Type is exactly "application/json" (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})
