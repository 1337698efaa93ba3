"""The real discord.py client through `serve()`, over a loopback gateway and HTTP API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket

from bot import discord as dc
from bot.runtime import open_runtime
from tests.discord_loopback import LoopbackDiscord
from tests.test_discord import OPENING, settings

pytestmark = pytest.mark.timeout(120)
LAN = {"id": "800000000000000001", "username": "lan", "discriminator": "0", "global_name": "Lan", "avatar": None}


async def test_slash_command_and_button_over_the_wire(tmp_path, tiny_model_dir, monkeypatch):
    fake = LoopbackDiscord()
    await fake.start()
    monkeypatch.setattr(discord.http.Route, "BASE", fake.http_base)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    try:
        async with open_runtime(settings(tmp_path, tiny_model_dir), watch=False) as runtime:
            bot = asyncio.create_task(dc.serve(runtime))
            try:
                await asyncio.wait_for(fake.identified.wait(), 30)
                assert {c["name"] for c in fake.commands} >= {"tho", "caidat", "top", "xoadulieu"}
                tho = next(c for c in fake.commands if c["name"] == "tho")
                assert [o["name"] for o in tho["options"]] == ["cau_dau", "the"]

                await fake.slash(LAN, "caidat", ungvien=1)
                interaction = await fake.slash(LAN, "tho", cau_dau=OPENING)
                poem = await fake.wait_for(
                    lambda: (lambda m: m if m and m["content"] else None)(
                        fake.messages.get(fake.originals.get(f"token{interaction}", ""))
                    )
                )
                assert fake.callbacks[interaction][0]["type"] == 5  # deferred first, within the 3 s
                assert poem["content"].startswith(OPENING)
                with sqlite3.connect(runtime.settings.db) as db:
                    ((poem_id,),) = db.execute("SELECT id FROM poems").fetchall()
                ids = [c["custom_id"] for row in poem["components"] for c in row["components"]]
                assert ids[:5] == [f"tho:rate:{poem_id}:{n}" for n in range(1, 6)]
                assert ids[5:] == [f"tho:pic:{poem_id}@dc:{LAN['id']}"]

                click = await fake.click(LAN, poem, f"tho:rate:{poem_id}:3")
                await fake.wait_for(lambda: any(m["content"].startswith("Cảm ơn") for m in fake.messages.values()))
                assert fake.callbacks[click][0]["type"] == 6
                with sqlite3.connect(runtime.settings.db) as db:
                    assert db.execute("SELECT user_key, stars FROM ratings").fetchall() == [(f"dc:{LAN['id']}", 3)]
                edited = fake.messages[fake.originals[f"token{click}"]]
                assert [c["label"] for c in edited["components"][0]["components"]] == ["⭐"] * 3 + ["☆"] * 2
            finally:
                bot.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await bot
    finally:
        await fake.stop()
