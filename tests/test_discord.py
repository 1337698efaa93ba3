"""The real discord.py client under simcord (pinned 3.2.1), on the real core/store/engine."""

from __future__ import annotations

import io
import json
import sqlite3
from contextlib import asynccontextmanager

import pytest
import simcord
from PIL import Image

from bot import discord as dc
from bot import texts
from bot.config import Settings
from bot.runtime import StartupError, open_runtime

pytestmark = pytest.mark.timeout(120)

OPENING = "Mùa thu lá vàng rơi"
SETTLE_SECONDS = 60  # a poem on the tiny model takes a few seconds on a loaded CPU


def settings(tmp_path, model_dir, **extra) -> Settings:
    values = {
        "THO_MODEL": model_dir,
        "THO_DB": tmp_path / "tho.db",
        "THO_MODEL_WATCH_SECONDS": 0,
        "DISCORD_TOKEN": "fake",
        "THO_STREAM": "0",  # one follow-up per answer, whole; streaming has its own test
        **extra,
    }
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def discord_bot(tmp_path, model_dir, **extra):
    async with open_runtime(settings(tmp_path, model_dir, **extra), watch=False) as runtime:
        # Env.start()/shutdown() rather than `async with simcord.run(...)`: a pytest fixture's setup and
        # teardown run in different contexts, which simcord's clock context cannot span.
        env = simcord.Env(dc.build_client(runtime, stream_interval=0), settle_timeout=SETTLE_SECONDS)
        await env.start()
        try:
            guild = env.create_guild(name="Nhà thơ")
            yield env, runtime, guild, guild.create_text_channel("tho")
        finally:
            await env.shutdown()
            env._raise_errors_since(env._errors_acknowledged)


@pytest.fixture
async def world(tmp_path, tiny_model_dir):
    async with discord_bot(tmp_path, tiny_model_dir) as world:
        yield world


def rows(runtime, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(runtime.settings.db) as db:
        return db.execute(sql, params).fetchall()


def callback_types(env, result) -> list[int]:
    """The interaction response types the bot sent (5: deferred message, 6: deferred update)."""
    interaction_id = result._interaction.id
    return [
        r.json["type"]
        for r in env.http_requests
        if r.method == "POST" and r.path.startswith(f"/interactions/{interaction_id}/")
    ]


def button_ids(message) -> list[list[str]]:
    return [[c.custom_id for c in row.children] for row in message.components]


def button_labels(message) -> list[list[str]]:
    return [[c.label for c in row.children] for row in message.components]


async def test_tho_poem_rating_buttons_write_rows(world):
    env, runtime, guild, channel = world
    lan = guild.add_member(env.create_user("lan"))
    await lan.slash(channel, "caidat", ungvien=1)
    result = await lan.slash(channel, "tho", cau_dau=OPENING)
    assert callback_types(env, result) == [5]  # deferred ("thinking..."), then the poem
    assert result.response.content.startswith(OPENING) and not result.response.ephemeral
    ((poem_id,),) = rows(runtime, "SELECT id FROM poems WHERE user_key = ?", f"dc:{lan.id}")
    message = channel.last_message
    assert button_ids(message)[0] == [f"tho:rate:{poem_id}:{n}" for n in range(1, 6)]

    click = await lan.click(message, custom_id=f"tho:rate:{poem_id}:4")
    assert click.acknowledged
    assert rows(runtime, "SELECT user_key, poem_id, stars FROM ratings") == [(f"dc:{lan.id}", poem_id, 4)]
    assert button_labels(channel.last_message) == [["⭐"] * 4 + ["☆"], [texts.PICTURE_BUTTON]]
    assert click.followups[0].content == texts.RATED_NEW.format(stars=4) and click.followups[0].ephemeral
    await lan.click(channel.last_message, custom_id=f"tho:rate:{poem_id}:2")
    assert rows(runtime, "SELECT stars FROM ratings") == [(2,)]


async def test_rating_button_survives_a_restart(world):
    env, runtime, guild, channel = world
    lan = guild.add_member(env.create_user("lan"))
    await lan.slash(channel, "caidat", ungvien=1)
    await lan.slash(channel, "tho", cau_dau=OPENING)
    ((poem_id,),) = rows(runtime, "SELECT id FROM poems")
    old_message = channel.last_message
    await env.restart_bot(dc.build_client(runtime))  # a fresh client: no view of the old process survives
    await lan.click(old_message, custom_id=f"tho:rate:{poem_id}:5")
    assert rows(runtime, "SELECT user_key, poem_id, stars FROM ratings") == [(f"dc:{lan.id}", poem_id, 5)]
    assert button_labels(channel.last_message)[0] == ["⭐"] * 5


async def test_caidat_options_and_buttons_reach_the_next_poem(world):
    env, runtime, guild, channel = world
    lan = guild.add_member(env.create_user("lan"))
    key = f"dc:{lan.id}"
    panel = await lan.slash(channel, "caidat")
    assert panel.response.ephemeral and panel.response.content.startswith(texts.SETTINGS_TITLE)
    labels = [c["label"] for row in panel.response.components for c in row["components"]]
    assert {"Ổn định", "Cân bằng", "Bay bổng", texts.RESET_BUTTON} <= set(labels)

    result = await lan.slash(channel, "caidat", nhietdo=1.2, kho=2, ungvien=1, the="lucbat", van="om")
    assert result.response.content.startswith("Đã lưu: nhiệt độ = 1.2.")
    stored = dict(rows(runtime, "SELECT name, value_json FROM user_settings WHERE user_key = ?", key))
    assert stored == {
        "temperature": "1.2",
        "stanzas": "2",
        "candidates": "1",
        "form": '"lucbat"',
        "scheme": '"om"',  # every setting is an option, the rhyme scheme too
    }
    # Out of range: Discord's client refuses it before the bot sees it (the option carries the range) ...
    with pytest.raises(simcord.OptionError):
        await lan.slash(channel, "caidat", nhietdo=9.0)
    assert dict(rows(runtime, "SELECT name, value_json FROM user_settings WHERE user_key = ?", key)) == stored

    await lan.slash(channel, "tho", cau_dau="Trăm năm trong cõi người ta")
    ((settings_json, form, stanzas),) = rows(runtime, "SELECT settings_json, form, stanzas FROM poems")
    assert json.loads(settings_json)["temperature"] == 1.2 and (form, stanzas) == ("lucbat", 2)

    # ... and the preset buttons on the (ephemeral) settings panel work like on Telegram.
    click = await lan.click(result.response, custom_id=f"tho:set:nhietdo:0.6@{key}")
    assert callback_types(env, click) == [6]
    assert rows(runtime, "SELECT value_json FROM user_settings WHERE user_key = ? AND name = 'temperature'", key) == [
        ("0.6",)
    ]
    await lan.click(result.response, custom_id=f"tho:reset@{key}")
    assert rows(runtime, "SELECT COUNT(*) FROM user_settings WHERE user_key = ?", key) == [(0,)]


async def test_bad_inputs_get_a_message_and_change_nothing(world):
    env, runtime, guild, channel = world
    lan = guild.add_member(env.create_user("lan"))
    for opening in [
        "Mùa thu lá vàng rơi " * 7,
        "🌸🍂🌙",
        "hello world",
        "'; DROP TABLE poems; --",
        "\x00\x07\x1b",
        " ",
    ]:
        expected = await runtime.core.tho("dc:999", opening)
        assert expected.error
        result = await lan.slash(channel, "tho", cau_dau=opening)
        assert result.response.content == expected.text
        assert not result.response.components
    assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(0,)]
    assert rows(runtime, "SELECT COUNT(*) FROM user_settings") == [(0,)]


async def test_direct_messages_tholai_top_and_delete(world):
    env, runtime, guild, channel = world
    mai = env.create_user("mai")
    key = f"dc:{mai.id}"
    await mai.slash("caidat", ungvien=1)
    first = await mai.slash("tho", cau_dau=OPENING)
    assert first.response.content.startswith(OPENING)
    again = await mai.slash("tholai")
    assert again.response.content.startswith(OPENING)
    (id1, seed1), (id2, seed2) = rows(runtime, "SELECT id, seed FROM poems WHERE user_key = ? ORDER BY id", key)
    assert seed1 != seed2
    await mai.click(again.response, custom_id=f"tho:rate:{id2}:5")
    top = await mai.slash("top")  # rated by its author only: not public
    assert top.response.content == texts.TOP_EMPTY

    confirm = await mai.slash("xoadulieu")
    assert confirm.response.ephemeral and confirm.response.content == texts.DELETE_CONFIRM
    await mai.click(confirm.response, custom_id=f"tho:delete:yes@{key}")
    assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(0,)]
    assert rows(runtime, "SELECT COUNT(*) FROM ratings") == [(0,)]
    stale = await mai.click(first.response, custom_id=f"tho:rate:{id1}:3")
    assert stale.followups[0].content == texts.POEM_NOT_FOUND


async def test_per_user_cooldown(tmp_path, tiny_model_dir):
    async with discord_bot(tmp_path, tiny_model_dir, THO_POEMS_PER_MINUTE=1) as (env, runtime, guild, channel):
        lan = guild.add_member(env.create_user("lan"))
        await lan.slash(channel, "caidat", ungvien=1)
        assert (await lan.slash(channel, "tho", cau_dau=OPENING)).response.content.startswith(OPENING)
        limited = await lan.slash(channel, "tho", cau_dau=OPENING)
        assert limited.response.content.startswith("Bạn làm thơ nhanh quá!")
        assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(1,)]


async def test_commands_are_registered_with_vietnamese_descriptions(world):
    env, runtime, guild, channel = world
    lan = guild.add_member(env.create_user("lan"))
    assert set(lan.available_commands(channel)) == {
        "tho",
        "tholai",
        "caidat",
        "danhgia",
        "top",
        "anh",
        "giaithich",
        "xoadulieu",
        "giupdo",
        "trangthai",
        "mohinh",
    }
    assert (await lan.slash(channel, "giupdo")).response.content == runtime.core.help_text()


async def test_missing_token_is_a_clear_error(tmp_path, tiny_model_dir):
    async with open_runtime(settings(tmp_path, tiny_model_dir, DISCORD_TOKEN=None), watch=False) as runtime:
        with pytest.raises(StartupError, match="DISCORD_TOKEN"):
            await dc.serve(runtime)


async def test_poem_grows_line_by_line_in_one_followup(tmp_path, tiny_model_dir):
    async with discord_bot(tmp_path, tiny_model_dir, THO_STREAM="1") as (env, runtime, guild, channel):
        lan = guild.add_member(env.create_user("lan"))
        await lan.slash(channel, "caidat", ungvien=1)
        await lan.slash(channel, "caidat", kho=2)
        await lan.slash(channel, "tho", cau_dau=OPENING)
        ((poem_id, stored),) = rows(runtime, "SELECT id, text FROM poems WHERE user_key = ?", f"dc:{lan.id}")
        message = channel.last_message
        # One message, which ends as the whole poem with its rating buttons.
        assert message.content.startswith(stored + "\n\n—") and texts.STREAM_WRITING not in message.content
        assert button_ids(message)[0] == [f"tho:rate:{poem_id}:{n}" for n in range(1, 6)]
        poem_messages = [m for m in channel.history() if m.content.startswith(OPENING)]
        assert poem_messages == [message]
        # Before that it was sent with the opening line and edited as lines were finished.
        sent = [r.json for r in env.http_requests if r.method == "POST" and "/webhooks/" in r.path]
        edits = [r.json for r in env.http_requests if r.method == "PATCH" and "/messages/" in r.path]
        growing = [b["content"] for b in sent + edits if b and texts.STREAM_WRITING in (b.get("content") or "")]
        assert growing[0] == OPENING + "\n" + texts.STREAM_WRITING
        assert len(growing) >= 2 and all(stored.startswith(g.split("\n" + texts.STREAM_WRITING)[0]) for g in growing)


async def test_picture_button_and_giaithich_send_png_files(world):
    env, runtime, guild, channel = world
    lan = guild.add_member(env.create_user("lan"))
    mai = guild.add_member(env.create_user("mai"))
    await lan.slash(channel, "caidat", ungvien=1)
    await lan.slash(channel, "tho", cau_dau=OPENING)
    ((poem_id,),) = rows(runtime, "SELECT id FROM poems WHERE user_key = ?", f"dc:{lan.id}")
    poem = channel.last_message
    assert button_ids(poem)[1] == [f"tho:pic:{poem_id}@dc:{lan.id}"]

    refused = await mai.click(poem, custom_id=f"tho:pic:{poem_id}@dc:{lan.id}")
    assert refused.followups[0].content == texts.NOT_YOUR_BUTTON and refused.followups[0].ephemeral
    click = await lan.click(poem, custom_id=f"tho:pic:{poem_id}@dc:{lan.id}")
    (attachment,) = click.followups[0].attachments
    image = Image.open(io.BytesIO(await attachment.read()))
    assert attachment.filename == "tho.png" and image.format == "PNG" and image.width == 1080

    result = await lan.slash(channel, "giaithich", dong=2, chu=3)
    assert "(dòng 2, chữ 3)" in result.response.content
    (attachment,) = result.response.attachments
    assert Image.open(io.BytesIO(await attachment.read())).width == 1080
    only_one = await lan.slash(channel, "giaithich", dong=2)
    assert only_one.response.content == texts.EXPLAIN_USAGE
