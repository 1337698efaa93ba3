"""Whole console flows on a tiny model: the real entry point, core, store and engine."""

import io
import sqlite3
import subprocess
import sys

import pytest

from bot import texts
from bot.config import Settings
from bot.console import handle_line, run_console
from bot.runtime import open_runtime

BAD_OPENINGS = {
    "empty": "/tho",
    "spaces": "/tho     ",
    "too long": "/tho " + "mùa thu " * 20,
    "emoji only": "/tho 😀🌸🌙",
    "latin only": "/tho hello world",
    "sql": "/tho '); DROP TABLE poems; --",
    "control characters": "/tho \x00\x07\x1b[31m",
}


def db_state(path):
    with sqlite3.connect(path) as db:
        return (
            db.execute("SELECT count(*) FROM poems").fetchone()[0],
            db.execute("SELECT user_key, name, value_json FROM user_settings ORDER BY 1, 2").fetchall(),
            db.execute("SELECT user_key, poem_id, stars FROM ratings ORDER BY 1, 2").fetchall(),
        )


@pytest.fixture
async def runtime(tiny_model_dir, tmp_path):
    settings = Settings(THO_MODEL=tiny_model_dir, THO_DB=tmp_path / "tho.db", THO_POEMS_PER_MINUTE=100)
    async with open_runtime(settings, watch=False) as rt:
        yield rt


async def test_poem_rating_and_settings_flow(runtime):
    core = runtime.core
    reply = await handle_line(core, "/tho Mùa thu lá vàng rơi")
    assert reply.poem_id == 1 and reply.text.startswith("Mùa thu lá vàng rơi\n")
    assert [b.action for b in reply.buttons[0]] == [f"rate:1:{n}" for n in range(1, 6)]

    assert "4★" in (await handle_line(core, "/danhgia 4")).text
    changed = await handle_line(core, "!rate:1:5")  # the star button
    assert "4★" in changed.text and "5★" in changed.text
    assert [b.label for b in changed.buttons[0]] == ["⭐"] * 5

    assert "0.7" in (await handle_line(core, "/caidat nhietdo 0,7")).text
    assert "lục bát" in (await handle_line(core, "/caidat the luc bat")).text
    await handle_line(core, "/caidat kho 2")
    poem = await handle_line(core, "/tho Bên kia sông")
    stored = await runtime.store.get_poem(poem.poem_id)
    assert stored.form == "lucbat" and stored.stanzas == 2 and stored.settings["temperature"] == 0.7
    assert len(stored.text.split("\n\n")) == 2

    again = await handle_line(core, "/tholai")
    stored_again = await runtime.store.get_poem(again.poem_id)
    assert stored_again.opening == "Bên kia sông" and stored_again.seed != stored.seed

    shown = (await handle_line(core, "/caidat")).text
    assert "nhiệt độ): 0.7" in shown and "số khổ): 2" in shown
    await handle_line(core, "/caidat macdinh")
    assert await runtime.store.get_settings("console:local") == {}
    assert (await handle_line(core, "/top")).text == texts.TOP_EMPTY  # one's own stars don't make it public
    for other in ("tg:1", "dc:2"):  # two other people liked it: now it is
        await core.action(other, "rate:1:5")
    assert "5.0★ (2 lượt)" in (await handle_line(core, "/top")).text


@pytest.mark.parametrize("line", list(BAD_OPENINGS.values()), ids=list(BAD_OPENINGS))
async def test_bad_opening_gets_vietnamese_message_and_changes_nothing(runtime, line):
    await runtime.store.set_setting("console:local", "temperature", 0.9)
    before = db_state(runtime.settings.db)
    reply = await handle_line(runtime.core, line)
    assert reply.error and reply.poem_id is None
    assert any(word in reply.text for word in ("Bạn", "Mình", "Câu"))  # Vietnamese, addressed to the user
    assert db_state(runtime.settings.db) == before


@pytest.mark.parametrize(
    "line",
    [
        "/caidat nhietdo 9",
        "/caidat nhietdo nóng",
        "/caidat topk -3",
        "/caidat the sonnet",
        "/caidat kho 7",
        "/caidat bogus 1",
        "/caidat nhietdo",
        "/danhgia 6",
        "/danhgia năm",
        "!rate:999:5",
        "!rate:1:9",
        "!garbage",
        "/khonglenh",
    ],
)
async def test_bad_settings_and_ratings_change_nothing(runtime, line):
    await handle_line(runtime.core, "/tho Mùa thu lá vàng rơi")
    await handle_line(runtime.core, "/danhgia 3")
    await runtime.store.set_setting("console:local", "temperature", 0.9)
    before = db_state(runtime.settings.db)
    reply = await handle_line(runtime.core, line)
    assert reply.error
    assert db_state(runtime.settings.db) == before


async def test_rate_limit_is_friendly(tiny_model_dir, tmp_path):
    settings = Settings(THO_MODEL=tiny_model_dir, THO_DB=tmp_path / "tho.db", THO_POEMS_PER_MINUTE=2)
    async with open_runtime(settings, watch=False) as rt:
        for _ in range(2):
            assert not (await handle_line(rt.core, "/tho Mùa thu")).error
        limited = await handle_line(rt.core, "/tho Mùa thu")
        assert limited.error and "giây" in limited.text
        assert db_state(settings.db)[0] == 2


async def test_delete_my_data_asks_first(runtime):
    await handle_line(runtime.core, "/tho Mùa thu lá vàng rơi")
    ask = await handle_line(runtime.core, "/xoadulieu")
    assert [b.action for b in ask.buttons[0]] == ["delete:yes@console:local", "delete:no@console:local"]
    assert db_state(runtime.settings.db)[0] == 1
    await handle_line(runtime.core, "!delete:no@console:local")
    assert db_state(runtime.settings.db)[0] == 1
    done = await handle_line(runtime.core, "!delete:yes@console:local")
    assert "1 bài thơ" in done.text and db_state(runtime.settings.db)[0] == 0


def test_console_entry_point_persists_across_restarts(tiny_model_dir, tmp_path):
    db = tmp_path / "tho.db"

    def console(stdin: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "console", "--model", str(tiny_model_dir), "--db", str(db)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    out = console("/giupdo\n/caidat nhietdo 1.1\n/tho Trăm năm trong cõi người ta\n/danhgia 5\n")
    assert "/tho <câu mở đầu>" in out and "Trăm năm trong cõi người ta" in out and "5★" in out
    out = console("/caidat\n/top\n")  # a new process: settings and ratings are still there
    assert "nhiệt độ): 1.1" in out
    assert "Chưa có bài thơ nào" in out  # one's own stars never put a poem in /top
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT stars FROM ratings").fetchall() == [(5,)]


def test_missing_model_is_explained(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bot", "console", "--model", str(tmp_path / "none"), "--db", str(tmp_path / "t.db")],
        capture_output=True,
        text=True,
        timeout=120,
        input="",
    )
    assert done.returncode == 2
    assert "make model" in done.stderr and "Chưa có mô hình" in done.stderr and "Traceback" not in done.stderr


async def test_console_prints_lines_as_they_come_and_then_only_the_rest(runtime):
    out = io.StringIO()
    # One candidate: best-of-n waits for every candidate and is shown at once.
    stdin = io.StringIO("/caidat kho 2\n/caidat ungvien 1\n/tho Mùa thu lá vàng rơi\n")
    await run_console(runtime.core, stdin=stdin, stdout=out, stream=True)
    poem = await runtime.store.last_poem("console:local")
    text = out.getvalue()
    # The poem appears once, whole, followed by its footer and the rating buttons.
    assert text.count("Mùa thu lá vàng rơi") == 1
    assert poem.text + "\n\n—" in text
    assert "!rate:" in text.split(poem.text, 1)[1]


async def test_console_streamed_lines_are_written_before_the_reply(runtime):
    writes: list[str] = []

    class Tap(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(s)
            return super().write(s)

    await runtime.core.caidat("console:local", "ungvien 1")
    await run_console(runtime.core, stdin=io.StringIO("/tho Mùa thu lá vàng rơi\n"), stdout=Tap(), stream=True)
    poem = await runtime.store.last_poem("console:local")
    lines = poem.text.split("\n")
    # The opening and each finished line were written on their own before the rest of the reply.
    assert writes[0] == lines[0] + "\n"
    assert "".join(writes[:3]) == "\n".join(lines[:3]) + "\n"
