"""`docker stop` and systemd stop the bot with SIGTERM: it stops as it does on Ctrl-C, in order, and says so.

The real `python -m bot telegram` process against the fake Bot API server; a user's settings and rating,
given just before the signal, are in the database afterwards.
"""

from __future__ import annotations

import signal
import sqlite3

import pytest

from tests.bot_process import start_bot, stop_bot
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
