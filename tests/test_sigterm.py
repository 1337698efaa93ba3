"""`docker stop` and systemd stop the bot with SIGTERM: it stops as it does on Ctrl-C, in order, and says so.

The real `python -m bot telegram` process against the fake Bot API server. The store commits every write as
it comes, so what a user gave just before the signal is kept either way; what the handler adds is the orderly
stop (updaters, engine, store) and exit status 0, which supervisors read as a clean stop.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys

import pytest

from tests.bot_process import ctrl_c_stops_it, start_bot, stop_bot
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.timeout(180)

TOKEN = "5555555555:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw7"


async def test_sigterm_stops_the_bot_cleanly_and_keeps_what_users_gave(tmp_path, tiny_model_dir):
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    db = tmp_path / "tho.db"
    bot = await start_bot(
        "telegram",
        (),
        "INFO",
        {
            "TELEGRAM_TOKEN": TOKEN,
            "TELEGRAM_BASE_URL": fake.base_url,
            "THO_MODEL": str(tiny_model_dir),
            "THO_DB": str(db),
        },
    )
    try:
        lan = fake.user(7)
        await fake.reply(lan, "/caidat nhietdo 0.6", timeout=90)
        poem = await fake.reply(lan, "/tho Mùa thu lá vàng rơi")
        rate = poem["reply_markup"]["inline_keyboard"][0][3]["callback_data"]  # 4★
        await fake.click(lan, poem, rate)
        await fake.wait_for(lambda: fake.calls_of("answerCallbackQuery"))
    finally:
        output = await stop_bot(bot, signal.SIGTERM)
        await fake.stop()
    assert bot.process.returncode == 0, output[-3000:]  # not -15: killed by the signal, nothing closed
    assert "SIGTERM: stopping" in output and output.rstrip().endswith("stopped"), output[-3000:]
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT value_json FROM user_settings WHERE user_key = 'tg:7'").fetchall() == [("0.6",)]
        assert con.execute("SELECT stars FROM ratings WHERE user_key = 'tg:7'").fetchall() == [(4,)]


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 0), (signal.SIGINT, 130)], ids=["SIGTERM", "Ctrl-C"])
async def test_console_stops_at_once_while_it_waits_for_a_line(tmp_path, tiny_model_dir, sig, status):
    """The console waits on stdin; a stop must not wait for the user to press Enter."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot", "console", "--model", str(tiny_model_dir), "--db", str(tmp_path / "tho.db")),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=ctrl_c_stops_it,
    )
    process.stdin.write(b"/caidat nhietdo 0.7\n")
    await process.stdin.drain()
    reply = b""
    while b"0.7" not in reply:  # the reply came: it is up, and waits for the next line
        reply = await asyncio.wait_for(process.stdout.readline(), 120)
        assert reply, "the console ended before it replied"
    process.send_signal(sig)
    try:
        assert await asyncio.wait_for(process.wait(), 30) == status  # stdin is still open
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
