"""Group chats and admins over the wire: the real PTB Application on the fake Bot API, discord.py under simcord.

Issue 12: buttons act only for the user they were made for, forged callback data gets a short answer and
nothing else, and THO_ADMINS is checked for every admin path on both platforms. Issue 11: /trangthai and
/mohinh (list, promote, roll back through the live swap).
"""

from __future__ import annotations

import logging

import pytest

from bot import texts
from tests.fake_telegram import BOT_USERNAME
from tests.test_discord import discord_bot
from tests.test_telegram import ADMIN_CHAT, OPENING, buttons, rows, telegram_bot

pytestmark = pytest.mark.timeout(180)
ADMIN = 40


def at(command: str) -> str:
    return command.replace(" ", f"@{BOT_USERNAME} ", 1) if " " in command else f"{command}@{BOT_USERNAME}"


def state(runtime) -> tuple:
    return (
        rows(runtime, "SELECT id, user_key, text FROM poems ORDER BY id"),
        rows(runtime, "SELECT * FROM user_settings ORDER BY 1, 2"),
        rows(runtime, "SELECT user_key, poem_id, stars FROM ratings ORDER BY 1, 2"),
    )


async def test_group_buttons_act_only_for_their_owner(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, TELEGRAM_ADMIN_CHAT=ADMIN_CHAT) as (fake, runtime):
        an, binh, group = fake.user(31, "An"), fake.user(32, "Bình"), fake.group()
        for user in (an, binh):
            await fake.reply(user, at("/caidat ungvien 1"), group)
        poem_a = await fake.reply(an, at(f"/tho {OPENING}"), group)
        await fake.reply(binh, at(f"/tho {OPENING}"), group)
        ((id_a,),) = rows(runtime, "SELECT id FROM poems WHERE user_key = 'tg:31'")
        confirm = await fake.reply(an, at("/xoadulieu"), group)
        panel = await fake.reply(an, at("/caidat"), group)
        before = state(runtime)
        edits = len(fake.calls_of("editMessageText"))

        # Bình presses An's "Xoá hết" and every button of An's settings panel: a private answer, nothing else.
        presses = [b["callback_data"] for row in buttons(confirm) + buttons(panel) for b in row]
        assert "delete:yes@tg:31" in presses
        for message, data in [(confirm, d) for d in presses[:2]] + [(panel, d) for d in presses[2:]]:
            answer = await fake.answer(await fake.click(binh, message, data))
            assert answer["text"] == texts.NOT_YOUR_BUTTON, data
        # A forged settings press on An's poem (data that is no button of that message).
        forged = await fake.answer(await fake.click(binh, poem_a, "set:nhietdo:0.6@tg:32"))
        assert forged["text"] == texts.UNKNOWN_ACTION
        assert state(runtime) == before
        assert len(fake.calls_of("editMessageText")) == edits
        assert fake.messages[(group["id"], poem_a["message_id"])]["text"] == poem_a["text"]
        assert fake.messages[(group["id"], confirm["message_id"])]["text"] == texts.DELETE_CONFIRM

        # Rating stars under a poem are for everyone: one rating per member.
        for user, stars in ((binh, 4), (an, 5)):
            assert (await fake.answer(await fake.click(user, poem_a, f"rate:{id_a}:{stars}")))[
                "text"
            ] == texts.RATED_NEW.format(stars=stars)
        assert rows(runtime, "SELECT user_key, stars FROM ratings ORDER BY 1") == [("tg:31", 5), ("tg:32", 4)]
        # An's own confirmation still works for An.
        assert await fake.answer(await fake.click(an, confirm, "delete:yes@tg:31"))
        await fake.wait_for(lambda: rows(runtime, "SELECT COUNT(*) FROM poems WHERE user_key = 'tg:31'") == [(0,)])
        assert rows(runtime, "SELECT COUNT(*) FROM poems WHERE user_key = 'tg:32'") == [(1,)]
        assert not fake.sent_to(ADMIN_CHAT)


@pytest.mark.parametrize("data", ["rate:99999999999999999999:5", "rate:1:5" + "9" * 50, "delete:yes", "x" * 64])
async def test_forged_callback_gets_a_short_answer_and_no_admin_report(tmp_path, tiny_model_dir, data):
    async with telegram_bot(tmp_path, tiny_model_dir, TELEGRAM_ADMIN_CHAT=ADMIN_CHAT) as (fake, runtime):
        lan = fake.user(33)
        # A client that lies about the message too: the forged data is "on" its keyboard.
        message = {
            "message_id": 1,
            "chat": {"id": 33, "type": "private"},
            "date": 0,
            "text": "x",
            "reply_markup": {"inline_keyboard": [[{"text": "5★", "callback_data": data}]]},
        }
        for _ in range(3):
            assert (await fake.answer(await fake.click(lan, message, data)))["text"] == texts.UNKNOWN_ACTION
        assert (await fake.reply(lan, "/start"))["text"] == texts.WELCOME  # still up
        assert not fake.sent_to(ADMIN_CHAT)
        assert not fake.calls_of("editMessageText")


async def test_telegram_admin_commands(tmp_path, tiny_model_dir, tiny_model_dir_b, tiny_bpe_model_dir, caplog):
    caplog.set_level(logging.INFO, logger="bot")
    async with telegram_bot(tmp_path, tiny_model_dir, THO_ADMINS=f"tg:{ADMIN}") as (fake, runtime):
        admin, other, group = fake.user(ADMIN, "Quản trị"), fake.user(41), fake.group()
        await runtime.store.record_model_version(
            "tiny-b", str(tiny_model_dir_b), status="candidate", metrics={"gate": {"passed": True, "ce_delta": 0.0125}}
        )
        # Not an admin: exactly the answer for a command that does not exist, and nothing happens.
        for command in ("/trangthai", "/mohinh", "/mohinh chon tiny-b", "/mohinh quaylai"):
            assert (await fake.reply(other, command))["text"] == texts.UNKNOWN_COMMAND
            assert (await fake.reply(other, "/khongco"))["text"] == texts.UNKNOWN_COMMAND
        await fake.command(other, at("/mohinh chon tiny-b"), group)  # in a group: silence, as for /khongco
        assert (await fake.reply(other, at("/start"), group))["text"] == texts.WELCOME
        assert len(fake.sent_to(group["id"])) == 1
        assert (await runtime.store.serving_model()).version == "tiny-a" == runtime.engine.model_version

        status = (await fake.reply(admin, "/trangthai"))["text"]
        assert status.startswith("Trạng thái") and "tiny-a" in status and "Đang làm: 0 bài" in status
        listing = (await fake.reply(admin, "/mohinh"))["text"]
        assert "▶ tiny-a — đang dùng" in listing and "tiny-b — ứng viên" in listing and "ce_delta=0.0125" in listing
        assert (await fake.reply(admin, "/mohinh chon khongco"))["text"] == texts.MODEL_UNKNOWN.format(
            version="khongco"
        )
        # A model whose tokens are not syllables is refused, with the reason, before anything changes.
        await runtime.store.record_model_version("tiny-bpe", str(tiny_bpe_model_dir), status="candidate")
        refused = (await fake.reply(admin, "/mohinh chon tiny-bpe"))["text"]
        assert refused == texts.MODEL_NOT_SYLLABLE.format(path=tiny_bpe_model_dir.resolve())
        assert runtime.engine.model_version == "tiny-a" and (await runtime.store.serving_model()).version == "tiny-a"
        swapped = (await fake.reply(admin, "/mohinh chon tiny-b"))["text"]
        assert swapped.startswith("Đã chuyển sang mô hình tiny-b")
        assert runtime.engine.model_version == "tiny-b" and (await runtime.store.serving_model()).version == "tiny-b"
        await fake.reply(admin, "/caidat ungvien 1")
        assert (await fake.reply(admin, f"/tho {OPENING}"))["text"].startswith(OPENING)
        assert rows(runtime, "SELECT model_version FROM poems") == [("tiny-b",)]

        back = (await fake.reply(admin, "/mohinh quaylai"))["text"]
        assert back.startswith("Đã chuyển sang mô hình tiny-a")
        assert runtime.engine.model_version == "tiny-a"
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.core"]
    assert any("admin tg:40 made model tiny-b the serving one" in m for m in logged)
    assert any(m.startswith("admin tg:40: /trangthai") for m in logged)
    assert not any("tg:41" in m for m in logged)


async def test_discord_admin_commands(tmp_path, tiny_model_dir, tiny_model_dir_b):
    async with discord_bot(tmp_path, tiny_model_dir) as (env, runtime, guild, channel):
        admin, other = guild.add_member(env.create_user("admin")), guild.add_member(env.create_user("other"))
        runtime.core.admins = frozenset({f"dc:{admin.id}"})
        await runtime.store.record_model_version("tiny-b", str(tiny_model_dir_b), status="candidate")
        for name, options in (
            ("trangthai", {}),
            ("mohinh", {}),
            ("mohinh", {"hanh_dong": "chon", "phien_ban": "tiny-b"}),
        ):
            refused = await other.slash(channel, name, **options)
            assert refused.response.content == texts.UNKNOWN_COMMAND and refused.response.ephemeral
        assert runtime.engine.model_version == "tiny-a"

        status = await admin.slash(channel, "trangthai")
        assert status.response.ephemeral and status.response.content.startswith("Trạng thái")
        swapped = await admin.slash(channel, "mohinh", hanh_dong="chon", phien_ban="tiny-b")
        assert swapped.response.content.startswith("Đã chuyển sang mô hình tiny-b")
        assert runtime.engine.model_version == "tiny-b"
        back = await admin.slash(channel, "mohinh", hanh_dong="quaylai")
        assert back.response.content.startswith("Đã chuyển sang mô hình tiny-a")


async def test_anonymous_admins_of_two_groups_are_two_users_not_one(tmp_path, tiny_model_dir):
    """Telegram sends every anonymous group admin's message from one account (GroupAnonymousBot), with the
    group as sender_chat. Keyed by that account, the admins of every group shared one set of settings,
    one last poem (/anh, /tholai acted on another group's) and one rate limit."""
    async with telegram_bot(tmp_path, tiny_model_dir) as (fake, runtime):
        anonymous = fake.ANONYMOUS_ADMIN
        first, second = fake.group(-1001111, "Nhóm một"), fake.group(-1002222, "Nhóm hai")
        await fake.reply(anonymous, at("/caidat the lucbat"), first, sender_chat=first)
        await fake.reply(anonymous, at("/caidat ungvien 1"), second, sender_chat=second)
        settings = rows(runtime, "SELECT user_key, name, value_json FROM user_settings ORDER BY 1, 2")
        assert settings == [("tg:-1001111", "form", '"lucbat"'), ("tg:-1002222", "candidates", "1")]

        await fake.reply(anonymous, at(f"/tho {OPENING}"), first, sender_chat=first)
        assert rows(runtime, "SELECT user_key, form FROM poems") == [("tg:-1001111", "lucbat")]
        answer = await fake.reply(anonymous, at("/anh"), second, sender_chat=second)  # the second group's admin
        assert answer["text"] == texts.NO_POEM_YET
        assert not fake.photos
