"""50 users send /tho at once through the fake Bot API server: everyone gets a poem, nothing is lost."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.test_telegram import OPENING, buttons, rows, telegram_bot

USERS = 50


def key(user: dict) -> str:
    return f"tg:{user['id']}"


@pytest.mark.timeout(240)
async def test_fifty_users_at_once(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, THO_POEMS_PER_MINUTE=600) as (fake, runtime):
        users = [fake.user(1000 + i, f"Người {i}") for i in range(USERS)]
        # Each user's own settings, all at once: a fast poem (one draft) and a temperature of their own.
        await asyncio.gather(*(fake.reply(u, "/caidat ungvien 1") for u in users))
        await asyncio.gather(*(fake.reply(u, f"/caidat nhietdo {0.5 + i / 100:g}") for i, u in enumerate(users)))

        poems = await asyncio.gather(*(fake.reply(u, f"/tho {OPENING}", timeout=180) for u in users))

        assert all(p["text"].startswith(OPENING) and buttons(p) for p in poems)
        stored = {
            key: (poem_id, json.loads(s))
            for poem_id, key, s in rows(runtime, "SELECT id, user_key, settings_json FROM poems")
        }
        assert len(stored) == USERS
        for i, u in enumerate(users):
            poem_id, settings = stored[key(u)]
            assert settings["temperature"] == pytest.approx(0.5 + i / 100) and settings["candidates"] == 1

        # Everyone rates at once; every rating lands.
        queries = await asyncio.gather(
            *(
                fake.click(u, p, f"rate:{stored[key(u)][0]}:{i % 5 + 1}")
                for i, (u, p) in enumerate(zip(users, poems, strict=False))
            )
        )
        await asyncio.gather(*(fake.answer(q) for q in queries))
        ratings = dict(rows(runtime, "SELECT user_key, stars FROM ratings"))
        assert ratings == {key(u): i % 5 + 1 for i, u in enumerate(users)}
