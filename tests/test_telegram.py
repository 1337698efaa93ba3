"""The real PTB Application, long-polling a fake Bot API server on 127.0.0.1, on the real core/store/engine."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from contextlib import asynccontextmanager

import pytest
from PIL import Image

from bot import telegram as tg
from bot import texts
from bot.config import Settings
from bot.runtime import StartupError, open_runtime
from engine.request import poem_text
from tests.fake_telegram import BOT_USERNAME, TOKEN, FakeTelegram

pytestmark = pytest.mark.timeout(120)

OPENING = "Mùa thu lá vàng rơi"
ADMIN_CHAT = -4242


def settings(tmp_path, model_dir, base_url, **extra) -> Settings:
    values = {
        "THO_MODEL": model_dir,
        "THO_DB": tmp_path / "tho.db",
        "THO_MODEL_WATCH_SECONDS": 0,
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": base_url,
        # One message per answer, whole: what most tests assert on. Streaming has its own tests below.
        "THO_STREAM": "0",
        **extra,
    }
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def telegram_bot(tmp_path, model_dir, **extra):
    """Fake server + runtime + the real Application polling it."""
    fake = FakeTelegram()
    await fake.start()
    try:
        async with open_runtime(settings(tmp_path, model_dir, fake.base_url, **extra), watch=False) as runtime:
            async with tg.running(runtime, poll_timeout=1) as application:
                application.bot_data["stream_interval"] = 0  # no pacing: edits as fast as lines come
                yield fake, runtime
    finally:
        await fake.stop()


@pytest.fixture
async def bot(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, TELEGRAM_ADMIN_CHAT=ADMIN_CHAT) as pair:
        yield pair


def rows(runtime, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(runtime.settings.db) as db:
        return db.execute(sql, params).fetchall()


def buttons(message: dict) -> list[list[dict]]:
    return message.get("reply_markup", {}).get("inline_keyboard", [])


async def test_start_help_and_command_menu(bot):
    fake, runtime = bot
    lan = fake.user(1, "Lan")
    assert (await fake.reply(lan, "/start"))["text"] == texts.WELCOME
    assert (await fake.reply(lan, "/giupdo"))["text"] == runtime.core.help_text()
    assert {(c["command"], c["description"]) for c in fake.commands} == set(texts.COMMAND_DESCRIPTIONS.items())
    assert (await fake.reply(lan, "/khongco"))["text"] == texts.UNKNOWN_COMMAND


async def test_poem_rating_click_writes_row_and_updates_keyboard(bot):
    fake, runtime = bot
    lan = fake.user(7, "Lan")
    await fake.reply(lan, "/caidat ungvien 1")
    poem = await fake.reply(lan, f"/tho {OPENING}")
    assert poem["text"].startswith(OPENING)
    ((poem_id, stored_text),) = rows(runtime, "SELECT id, text FROM poems WHERE user_key = 'tg:7'")
    assert poem["text"].startswith(stored_text)
    assert [[(b["text"], b["callback_data"]) for b in row] for row in buttons(poem)] == [
        [(f"{n}★", f"rate:{poem_id}:{n}") for n in range(1, 6)],
        [(texts.PICTURE_BUTTON, f"pic:{poem_id}@tg:7")],
    ]
    typing = [c for c in fake.calls_of("sendChatAction") if c.params["chat_id"] == 7]
    assert typing and typing[0].params["action"] == "typing"

    query = await fake.click(lan, poem, f"rate:{poem_id}:4")
    assert (await fake.answer(query))["text"] == texts.RATED_NEW.format(stars=4)
    assert rows(runtime, "SELECT user_key, poem_id, stars FROM ratings") == [("tg:7", poem_id, 4)]
    stored = fake.messages[(7, poem["message_id"])]
    await fake.wait_for(lambda: buttons(stored)[0][0]["text"] == "⭐")
    assert [b["text"] for b in buttons(stored)[0]] == ["⭐"] * 4 + ["☆"]
    assert stored["text"] == poem["text"]  # the poem itself stays

    query = await fake.click(lan, stored, f"rate:{poem_id}:2")
    assert (await fake.answer(query))["text"] == texts.RATED_CHANGED.format(previous=4, stars=2)
    await fake.wait_for(lambda: [b["text"] for b in buttons(stored)[0]] == ["⭐"] * 2 + ["☆"] * 3)
    # The same star again: the keyboard doesn't change (Telegram says "not modified"), no error.
    query = await fake.click(lan, stored, f"rate:{poem_id}:2")
    await fake.answer(query)
    assert rows(runtime, "SELECT stars FROM ratings") == [(2,)]
    assert not fake.sent_to(ADMIN_CHAT)

    top = await fake.reply(lan, "/top")  # rated only by its author: not public
    assert top["text"] == texts.TOP_EMPTY


async def test_settings_change_reaches_the_next_poem(bot):
    fake, runtime = bot
    lan = fake.user(8)
    panel = await fake.reply(lan, "/caidat")
    assert panel["text"].startswith(texts.SETTINGS_TITLE)
    labels = [b["text"] for row in buttons(panel) for b in row]
    assert {"Ổn định", "Cân bằng", "Bay bổng", texts.RESET_BUTTON} <= set(labels)

    query = await fake.click(lan, panel, "set:nhietdo:1.2@tg:8")  # "Bay bổng"
    await fake.answer(query)
    edited = fake.messages[(8, panel["message_id"])]
    await fake.wait_for(lambda: edited["text"].startswith("Đã lưu"))
    saved = await fake.reply(lan, "/caidat kho 2")
    assert saved["text"] == texts.SETTING_SAVED.format(label=texts.SETTING_LABELS["stanzas"], value=2)
    await fake.reply(lan, "/caidat ungvien 1")

    await fake.reply(lan, f"/tho {OPENING}")
    ((settings_json, stanzas),) = rows(runtime, "SELECT settings_json, stanzas FROM poems WHERE user_key = 'tg:8'")
    assert json.loads(settings_json)["temperature"] == 1.2 and json.loads(settings_json)["candidates"] == 1
    assert stanzas == 2

    await fake.reply(lan, "/caidat nhietdo 0.9")  # an exact value
    assert rows(runtime, "SELECT value_json FROM user_settings WHERE name = 'temperature'") == [("0.9",)]

    query = await fake.click(lan, edited, "reset@tg:8")
    await fake.answer(query)
    assert rows(runtime, "SELECT COUNT(*) FROM user_settings WHERE user_key = 'tg:8'") == [(0,)]


async def test_tholai_same_opening_new_seed(bot):
    fake, runtime = bot
    lan = fake.user(9)
    assert (await fake.reply(lan, "/tholai"))["text"] == texts.NO_POEM_YET
    await fake.reply(lan, "/caidat ungvien 1")
    await fake.reply(lan, f"/tho {OPENING}")
    again = await fake.reply(lan, "/tholai")
    assert again["text"].startswith(OPENING)
    (o1, f1, s1), (o2, f2, s2) = rows(runtime, "SELECT opening, form, seed FROM poems ORDER BY id")
    assert (o1, f1) == (o2, f2) == (OPENING, "5chu") and s1 != s2


async def test_group_chat_with_bot_username(bot):
    fake, runtime = bot
    lan, group = fake.user(10), fake.group()
    await fake.command(lan, "/tho@SomeOtherBot Mùa thu lá vàng rơi", group)  # not for us
    await fake.reply(lan, "/caidat@" + BOT_USERNAME + " ungvien 1", group)
    poem = await fake.reply(lan, f"/tho@{BOT_USERNAME} {OPENING}", group)
    assert poem["text"].startswith(OPENING) and poem["chat"]["id"] == group["id"]
    assert rows(runtime, "SELECT user_key, opening FROM poems") == [("tg:10", OPENING)]
    sent = [c for c in fake.calls_of("sendMessage") if c.params["chat_id"] == group["id"]]
    assert len(sent) == 2 and "reply_parameters" in sent[-1].params  # quotes the asker in a group
    await fake.command(lan, "/khongco", group)  # unknown commands in groups may be another bot's: silence
    await fake.reply(lan, "/start", group)
    assert len(fake.sent_to(group["id"])) == 3


async def test_delete_my_data_after_confirmation(bot):
    fake, runtime = bot
    lan, mai = fake.user(11), fake.user(12, "Mai")
    await fake.reply(lan, "/caidat ungvien 1")
    poem = await fake.reply(lan, f"/tho {OPENING}")
    poem_id = rows(runtime, "SELECT id FROM poems")[0][0]
    await fake.answer(await fake.click(lan, poem, f"rate:{poem_id}:5"))
    await fake.answer(await fake.click(mai, poem, f"rate:{poem_id}:3"))

    confirm = await fake.reply(lan, "/xoadulieu")
    assert confirm["text"] == texts.DELETE_CONFIRM
    await fake.answer(await fake.click(lan, confirm, "delete:no@tg:11"))
    assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(1,)]
    confirm = await fake.reply(lan, "/xoadulieu")
    await fake.answer(await fake.click(lan, confirm, "delete:yes@tg:11"))
    done = fake.messages[(11, confirm["message_id"])]
    await fake.wait_for(lambda: done["text"].startswith("Đã xoá"))
    assert "reply_markup" not in done
    assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(0,)]
    assert rows(runtime, "SELECT COUNT(*) FROM ratings") == [(0,)]
    # A button under the deleted poem now changes nothing and says so.
    query = await fake.click(lan, poem, f"rate:{poem_id}:4")
    assert (await fake.answer(query))["text"] == texts.POEM_NOT_FOUND
    assert rows(runtime, "SELECT COUNT(*) FROM ratings") == [(0,)]


BAD_OPENINGS = ["", "Mùa thu lá vàng rơi " * 7, "🌸🍂🌙", "hello world", "'; DROP TABLE poems; --", "\x00\x07\x1b"]


async def test_bad_inputs_get_a_message_and_change_nothing(bot):
    fake, runtime = bot
    lan = fake.user(13)
    await fake.reply(lan, "/caidat nhietdo 0.7")
    before = rows(runtime, "SELECT name, value_json FROM user_settings")
    for opening in BAD_OPENINGS:
        expected = await runtime.core.tho("tg:999", opening)  # the core's own answer (changes nothing)
        assert expected.error, opening
        answer = await fake.reply(lan, f"/tho {opening}")
        assert answer["text"] == expected.text, opening
        assert "reply_markup" not in answer
    for args, key in [
        ("nhietdo 9", "temperature"),
        ("kho 0", "stanzas"),
        ("the haiku", "form"),
        ("nhietdo abc", "temperature"),
    ]:
        answer = await fake.reply(lan, f"/caidat {args}")
        assert answer["text"].startswith(f"Giá trị '{args.split()[1]}' không hợp lệ cho {texts.SETTING_LABELS[key]}")
    assert (await fake.reply(lan, "/caidat khongco 1"))["text"].startswith("Không có cài đặt 'khongco'")
    # A forged button payload is refused too.
    query = await fake.click(lan, {"message_id": 1, "chat": {"id": 13, "type": "private"}, "date": 0}, "rate:1;DROP:5")
    assert (await fake.answer(query))["text"] == texts.UNKNOWN_ACTION
    assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(0,)]
    assert rows(runtime, "SELECT COUNT(*) FROM ratings") == [(0,)]
    assert rows(runtime, "SELECT name, value_json FROM user_settings") == before


async def test_rate_limit_per_user(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, THO_POEMS_PER_MINUTE=1) as (fake, runtime):
        lan, mai = fake.user(14), fake.user(15)
        await fake.reply(lan, "/caidat ungvien 1")
        await fake.reply(mai, "/caidat ungvien 1")
        assert (await fake.reply(lan, f"/tho {OPENING}"))["text"].startswith(OPENING)
        limited = await fake.reply(lan, f"/tho {OPENING}")
        assert limited["text"].startswith("Bạn làm thơ nhanh quá!")
        assert (await fake.reply(lan, "/tholai"))["text"].startswith("Bạn làm thơ nhanh quá!")
        assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(1,)]
        # Another user is not limited by Lan's quota.
        assert (await fake.reply(mai, f"/tho {OPENING}"))["text"].startswith(OPENING)


async def test_flood_control_429_is_retried(bot):
    fake, runtime = bot
    lan = fake.user(16)
    fake.fail_next("sendMessage", retry_after=1)
    answer = await fake.reply(lan, "/start")
    assert answer["text"] == texts.WELCOME
    assert [c.status for c in fake.calls_of("sendMessage")] == [429, 200]


async def test_errors_are_reported_to_admin_and_user_gets_apology(bot):
    fake, runtime = bot
    lan = fake.user(17)
    fake.fail_next("sendMessage", status=500)  # Telegram has a bad moment: the handler fails
    await fake.command(lan, "/start")
    report = await fake.wait_for(lambda: (fake.sent_to(ADMIN_CHAT) or [None])[0])
    assert "tg:17 in chat 17: '/start'" in report["text"]
    assert "telegram.error.NetworkError: Internal Server Error" in report["text"]
    apology = await fake.wait_for(lambda: (fake.sent_to(17) or [None])[0])
    assert apology["text"] == texts.APOLOGY


async def test_missing_token_is_a_clear_error(tmp_path, tiny_model_dir):
    async with open_runtime(
        settings(tmp_path, tiny_model_dir, "http://127.0.0.1:9/bot", TELEGRAM_TOKEN=None), watch=False
    ) as runtime:
        with pytest.raises(StartupError, match="TELEGRAM_TOKEN"):
            tg.build_application(runtime)


# -- streaming: the poem grows line by line in one message ---------------------------------------------
def shown_texts(fake: FakeTelegram, chat_id: int, message_id: int) -> list[str]:
    """Every text the poem's message had, in order: as sent, then each edit."""
    texts_ = []
    for call in fake.calls:
        params = call.params
        if call.status != 200 or params.get("chat_id") != chat_id:
            continue
        if call.method == "sendMessage" and params["text"].startswith(OPENING) and not texts_:
            texts_.append(params["text"])
        elif call.method == "editMessageText" and params.get("message_id") == message_id:
            texts_.append(params["text"])
    return texts_


async def test_poem_is_shown_line_by_line_then_whole_with_buttons(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, THO_STREAM="1") as (fake, runtime):
        lan = fake.user(31)
        await fake.reply(lan, "/caidat ungvien 1")
        await fake.reply(lan, "/caidat kho 2")
        first = await fake.reply(lan, f"/tho {OPENING}")
        message = fake.messages[(31, first["message_id"])]
        await fake.wait_for(lambda: buttons(message))  # the rating buttons come with the last line
        ((poem_id, stored),) = rows(runtime, "SELECT id, text FROM poems WHERE user_key = 'tg:31'")

        shown = shown_texts(fake, 31, first["message_id"])
        lines = stored.replace("\n\n", "\n").split("\n")
        *growing, final = shown
        # First the user's own line, then each edit adds finished lines, never more edits than lines.
        assert growing[0] == OPENING + "\n" + texts.STREAM_WRITING
        counts = []
        for text in growing:
            assert text.endswith("\n" + texts.STREAM_WRITING)
            body = text[: -len(texts.STREAM_WRITING) - 1]
            k = len(body.replace("\n\n", "\n").split("\n"))
            assert poem_text(lines[:k]) == body
            counts.append(k)
        assert counts == sorted(set(counts)) and len(growing) <= len(lines)
        # It ends equal to the stored poem, with the footer and the stars.
        assert final.startswith(stored + "\n\n—") and texts.STREAM_WRITING not in final
        assert message["text"] == final
        assert [b["callback_data"] for b in buttons(message)[0]] == [f"rate:{poem_id}:{n}" for n in range(1, 6)]
        assert len([m for m in fake.sent_to(31) if m["text"].startswith(OPENING)]) == 1  # one message


async def test_a_stream_that_cannot_be_edited_still_ends_with_the_whole_poem(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, THO_STREAM="1") as (fake, runtime):
        lan = fake.user(32)
        await fake.reply(lan, "/caidat ungvien 1")
        fake.fail_next("editMessageText", status=400, times=100)  # e.g. the message was deleted meanwhile
        before = len(fake.sent_to(32))
        await fake.command(lan, f"/tho {OPENING}")
        final = await fake.wait_for(lambda: next((m for m in fake.sent_to(32)[before:] if buttons(m)), None))
        ((stored,),) = rows(runtime, "SELECT text FROM poems WHERE user_key = 'tg:32'")
        assert final["text"].startswith(stored + "\n\n—")


async def test_a_poem_cut_off_half_way_ends_with_a_clear_error_not_half_a_poem(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, THO_STREAM="1", THO_POEM_TIMEOUT_SECONDS="0.02") as (
        fake,
        runtime,
    ):
        lan = fake.user(33)
        await fake.reply(lan, "/caidat ungvien 1")
        await fake.reply(lan, "/caidat kho 4")
        before = len(fake.sent_to(33))
        await fake.command(lan, f"/tho {OPENING}")
        error = texts.POEM_TIMEOUT.format(seconds=0.02)
        await fake.wait_for(lambda: any(m["text"] == error for m in fake.sent_to(33)[before:]))
        await asyncio.sleep(0.2)  # anything still on its way arrives
        # Whatever had been shown was replaced by the error: no half poem is left on screen.
        assert [m["text"] for m in fake.sent_to(33)[before:]] == [error]
        assert rows(runtime, "SELECT COUNT(*) FROM poems WHERE user_key = 'tg:33'") == [(0,)]


# -- pictures: 🖼 under a poem, /anh, /giaithich ----------------------------------------------------------
def photos_in(fake: FakeTelegram, chat_id: int) -> list[bytes]:
    return [photo for (chat, _), photo in sorted(fake.photos.items()) if chat == chat_id]


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


async def test_picture_button_sends_a_png_of_the_poem_only_for_its_author(bot):
    fake, runtime = bot
    lan, mai = fake.user(41, "Lan Anh"), fake.user(42, "Mai")
    await fake.reply(lan, "/caidat ungvien 1")
    poem = await fake.reply(lan, f"/tho {OPENING}")
    ((poem_id,),) = rows(runtime, "SELECT id FROM poems WHERE user_key = 'tg:41'")
    assert buttons(poem)[1] == [{"text": texts.PICTURE_BUTTON, "callback_data": f"pic:{poem_id}@tg:41"}]

    query = await fake.click(lan, poem, f"pic:{poem_id}@tg:41")
    await fake.answer(query)
    (photo,) = await fake.wait_for(lambda: photos_in(fake, 41))
    image = png(photo)
    assert image.width == 1080 and 400 <= image.height <= 3240
    sent = [m for m in fake.sent_to(41) if "photo" in m]
    # A whole first line is not repeated as the title: the card is "untitled", as poems without a title are.
    assert sent[0]["caption"] == texts.PICTURE_CAPTION.format(title=texts.PICTURE_UNTITLED)

    # Someone else pressing it (the button is on a message they can see in a group) gets nothing.
    query = await fake.click(mai, poem, f"pic:{poem_id}@tg:41")
    assert (await fake.answer(query))["text"] == texts.NOT_YOUR_BUTTON
    assert len(fake.photos) == 1

    # Rating keeps the picture button under the poem.
    query = await fake.click(lan, poem, f"rate:{poem_id}:5")
    await fake.answer(query)
    stored = fake.messages[(41, poem["message_id"])]
    await fake.wait_for(lambda: buttons(stored)[0][4]["text"] == "⭐")
    assert buttons(stored)[1][0]["callback_data"] == f"pic:{poem_id}@tg:41"


async def test_anh_signs_the_picture_only_when_the_user_agreed(bot):
    fake, runtime = bot
    lan = fake.user(43, "Lan Anh")
    assert (await fake.reply(lan, "/anh"))["text"] == texts.NO_POEM_YET
    await fake.reply(lan, f"/tho {OPENING}")

    async def picture() -> bytes:
        before = len(photos_in(fake, 43))
        await fake.command(lan, "/anh")
        return (await fake.wait_for(lambda: photos_in(fake, 43)[before:]))[0]

    unsigned = await picture()
    await fake.reply(lan, "/caidat kyten co")
    signed = await picture()
    await fake.reply(lan, "/caidat kyten khong")
    assert png(signed).size == png(unsigned).size
    assert signed != unsigned  # the name is drawn in the footer
    assert await picture() == unsigned  # and gone again once the user says no


async def test_giaithich_colours_each_syllable_and_shows_where_the_model_looked(bot):
    fake, runtime = bot
    lan = fake.user(44)
    assert (await fake.reply(lan, "/giaithich"))["text"] == texts.NO_POEM_YET
    await fake.reply(lan, f"/tho {OPENING}")

    async def explained(args: str = "") -> tuple[dict, bytes]:
        before = len(photos_in(fake, 44))
        await fake.command(lan, f"/giaithich {args}".strip())
        (photo,) = await fake.wait_for(lambda: photos_in(fake, 44)[before:])
        return [m for m in fake.sent_to(44) if "photo" in m][-1], photo

    message, overview = await explained()
    assert message["caption"].startswith("Mỗi chữ tô màu") and png(overview).width == 1080
    message, focused = await explained("2 3")
    assert message["caption"].startswith("Khi viết «") and "(dòng 2, chữ 3)" in message["caption"]
    assert png(focused).height > png(overview).height  # the attention strip under the poem

    assert (await fake.reply(lan, "/giaithich 9 1"))["text"] == texts.EXPLAIN_NO_SUCH_LINE.format(lines=4)
    assert (await fake.reply(lan, "/giaithich hai ba"))["text"] == texts.EXPLAIN_USAGE


# -- inline mode: @Bot <câu mở đầu> in any chat -----------------------------------------------------------
async def test_inline_query_offers_a_poem_with_the_users_settings(bot):
    fake, runtime = bot
    lan = fake.user(51)
    await fake.reply(lan, "/caidat kho 2")
    query = await fake.inline_query(lan, OPENING)
    answer = await fake.wait_for(lambda: fake.inline_answers.get(query))
    (result,) = answer["results"]
    ((poem_id, stored, stanzas),) = rows(runtime, "SELECT id, text, stanzas FROM poems WHERE user_key = 'tg:51'")
    assert stanzas == 2  # the user's own setting
    assert result["type"] == "article" and result["id"] == str(poem_id) and result["title"] == OPENING
    assert result["input_message_content"]["message_text"].startswith(stored + "\n\n—")
    stars = result["reply_markup"]["inline_keyboard"]
    # the stars' actions, each signed: a press on an inline message comes without the message
    assert [b["callback_data"].partition("~")[0] for b in stars[0]] == [f"rate:{poem_id}:{n}" for n in range(1, 6)]
    assert len(stars) == 1
    assert int(answer["cache_time"]) <= 60 and str(answer["is_personal"]).lower() == "true"


async def test_an_inline_messages_stars_rate_its_poem_and_forged_ones_rate_nothing(bot):
    """A press on a message sent through inline mode comes without the message, so the adapter cannot
    see its buttons: its stars carry a signature. Anyone in that chat may rate that poem; data made
    up by a client (another poem's id, another value, no signature) is refused and stores nothing:
    before, two accounts could rate any private poem by its id into /top."""
    fake, runtime = bot
    lan, minh = fake.user(54), fake.user(55)
    private = await fake.reply(minh, f"/tho {OPENING}")  # a poem written in a private chat
    ((private_id,),) = rows(runtime, "SELECT id FROM poems WHERE user_key = 'tg:55'")
    assert private["text"].startswith(OPENING)
    query = await fake.inline_query(lan, "Chiều nay em đứng bên sông")
    answer = await fake.wait_for(lambda: fake.inline_answers.get(query))
    ((shared_id,),) = rows(runtime, "SELECT id FROM poems WHERE user_key = 'tg:54'")
    stars = answer["results"][0]["reply_markup"]["inline_keyboard"][0]
    five = stars[4]["callback_data"]
    assert five.startswith(f"rate:{shared_id}:5~") and len(five.encode()) <= 64

    pressed = await fake.click_inline(minh, "inline-1", five)  # someone in the chat it was sent to
    assert (await fake.answer(pressed)).get("text") != texts.UNKNOWN_ACTION
    assert rows(runtime, "SELECT poem_id, user_key, stars FROM ratings") == [(shared_id, "tg:55", 5)]

    signature = five.rpartition("~")[2]
    for forged in (f"rate:{private_id}:5", f"rate:{private_id}:5~{signature}", f"rate:{shared_id}:1~{signature}"):
        pressed = await fake.click_inline(lan, "inline-1", forged)
        assert (await fake.answer(pressed))["text"] == texts.UNKNOWN_ACTION, forged
    assert rows(runtime, "SELECT poem_id, user_key, stars FROM ratings") == [(shared_id, "tg:55", 5)]


async def test_an_edited_command_is_not_run_again(bot):
    """Telegram sends an edit of an old message as an update too: editing "/danhgia 5" must not rate the
    latest poem again, nor an edited /tho write one."""
    fake, runtime = bot
    lan = fake.user(56)
    await fake.reply(lan, f"/tho {OPENING}")
    rated = await fake.command(lan, "/danhgia 5")
    await fake.wait_for(lambda: rows(runtime, "SELECT stars FROM ratings") == [(5,)])
    written = await fake.command(lan, "/tho Chiều nay em đứng bên sông")
    await fake.wait_for(lambda: rows(runtime, "SELECT COUNT(*) FROM poems") == [(2,)])
    sent = len(fake.sent_to(lan["id"]))
    await fake.edit(rated, "/danhgia 1")
    await fake.edit(written, "/tho Đêm nay trăng sáng quá chừng")
    # Updates are handled concurrently: give the edits the time a command takes here, then one more command
    await asyncio.sleep(1.5)
    await fake.reply(lan, "/caidat")
    assert len(fake.sent_to(lan["id"])) == sent + 1
    assert rows(runtime, "SELECT stars FROM ratings") == [(5,)]
    assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(2,)]


async def test_inline_queries_typed_over_are_not_written_and_the_rate_limit_holds(tmp_path, tiny_model_dir):
    async with telegram_bot(tmp_path, tiny_model_dir, THO_POEMS_PER_MINUTE="1") as (fake, runtime):
        lan = fake.user(52)
        typing_ = [await fake.inline_query(lan, OPENING[:n]) for n in (3, 8, len(OPENING))]
        answer = await fake.wait_for(lambda: fake.inline_answers.get(typing_[-1]))
        assert len(answer["results"]) == 1
        await asyncio.sleep(tg.INLINE_DEBOUNCE_SECONDS + 0.3)
        assert set(fake.inline_answers) == {typing_[-1]}  # only the query the user left standing
        assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(1,)]

        again = await fake.inline_query(lan, "Chiều nay em đứng bên sông")
        refused = await fake.wait_for(lambda: fake.inline_answers.get(again))
        assert refused["results"] == [] and refused["button"]["text"].startswith("Bạn làm thơ nhanh quá")
        assert rows(runtime, "SELECT COUNT(*) FROM poems") == [(1,)]


async def test_empty_inline_query_gets_a_hint(bot):
    fake, runtime = bot
    query = await fake.inline_query(fake.user(53), "   ")
    answer = await fake.wait_for(lambda: fake.inline_answers.get(query))
    assert answer["results"] == [] and answer["button"]["text"] == texts.INLINE_HINT
