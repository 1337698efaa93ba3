"""No secret ever reaches a log: the real `python -m bot telegram|discord` processes against the local fakes.

Each run starts the entry point as an operator would, at one of the log levels the README documents,
has it talk to the fake Bot API server (or the loopback Discord), makes it fail a few times (a 500 from
Telegram, an admin chat that cannot be reached) and stops it with Ctrl-C; then nothing it printed may
contain the token, the webhook secret or the admin chat id.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from bot.logsafe import Redactor
from tests.bot_process import start_bot, stop_bot
from tests.discord_loopback import LoopbackDiscord
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.timeout(180)

TELEGRAM_TOKEN = "5555555555:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw7"  # the shape BotFather gives
DISCORD_TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0Mw.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"
WEBHOOK_SECRET = "s3cr3t-webhook-value"
ADMIN_CHAT = -1009876543210
# (extra command-line flags, THO_LOG_LEVEL) for every level the README documents.
LEVELS = [((), None), (("-v",), None), ((), "DEBUG"), ((), "INFO"), ((), "WARNING"), ((), "ERROR")]


def leaked(output: str) -> list[str]:
    secrets = [
        TELEGRAM_TOKEN,
        TELEGRAM_TOKEN.split(":", 1)[1],
        DISCORD_TOKEN,
        WEBHOOK_SECRET,
        str(ADMIN_CHAT),
        str(ADMIN_CHAT)[1:],
    ]
    return [s for s in secrets if s in output]


@pytest.mark.parametrize("flags,level", LEVELS, ids=lambda v: str(v))
async def test_telegram_entry_point_logs_no_secret(tmp_path, tiny_model_dir, flags, level):
    fake = FakeTelegram(token=TELEGRAM_TOKEN)
    await fake.start()
    bot = await start_bot(
        "telegram",
        flags,
        level,
        {
            "TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_BASE_URL": fake.base_url,
            "TELEGRAM_ADMIN_CHAT": str(ADMIN_CHAT),
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "THO_MODEL": str(tiny_model_dir),
            "THO_DB": str(tmp_path / "tho.db"),
        },
    )
    try:
        lan = fake.user(7)
        assert (await fake.reply(lan, "/start", timeout=90))["text"]
        # Telegram fails twice: the handler's reply and then the report to the admin chat.
        fake.fail_next("sendMessage", status=500, times=2)
        await fake.command(lan, "/giupdo")
        await fake.wait_for(lambda: len([c for c in fake.calls_of("sendMessage") if c.status == 500]) == 2)
        await fake.wait_for(lambda: fake.sent_to(7)[1:])  # the apology came through after the failures
    finally:
        output = await stop_bot(bot)
        await fake.stop()
    assert not leaked(output), output[-3000:]
    if level in (None, "DEBUG", "INFO"):  # the log did speak: the test would see a token in it
        assert "Telegram bot @ThoTestBot is up" in output, output[-3000:]
    if flags or level == "DEBUG":
        assert "getUpdates" in output  # requests are logged at DEBUG, with the token masked
    if level != "ERROR":
        assert "could not report to the admin chat" in output


@pytest.mark.parametrize("flags,level", LEVELS, ids=lambda v: str(v))
async def test_discord_entry_point_logs_no_secret(tmp_path, tiny_model_dir, flags, level):
    fake = LoopbackDiscord()
    await fake.start()
    bot = await start_bot(
        "discord",
        flags,
        level,
        {
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "DISCORD_API_URL": fake.http_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "THO_MODEL": str(tiny_model_dir),
            "THO_DB": str(tmp_path / "tho.db"),
        },
    )
    try:
        await asyncio.wait_for(fake.identified.wait(), 90)
        await fake.wait_for(lambda: fake.commands)
        lan = {
            "id": "800000000000000001",
            "username": "lan",
            "discriminator": "0",
            "global_name": "Lan",
            "avatar": None,
        }
        interaction = await fake.slash(lan, "giupdo")
        await fake.wait_for(
            lambda: (fake.messages.get(fake.originals.get(f"token{interaction}", "")) or {}).get("content"), 60
        )
    finally:
        output = await stop_bot(bot)
        await fake.stop()
    assert not leaked(output), output[-3000:]
    if level in (None, "DEBUG", "INFO"):
        assert "logging in using static token" in output, output[-3000:]


def test_redactor_masks_secrets_in_messages_arguments_and_tracebacks():
    import logging

    from bot.logsafe import RedactingFormatter

    redact = Redactor([WEBHOOK_SECRET])
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "url %s", (f"/bot{TELEGRAM_TOKEN}/getMe",), None)
    try:
        raise RuntimeError(f"failed with {WEBHOOK_SECRET} and {DISCORD_TOKEN}")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    text = RedactingFormatter("%(message)s", redact).format(record)
    assert "RuntimeError" in text and "/bot***/getMe" in text
    assert not leaked(text)
    # A token nobody configured is still caught by its shape.
    assert leaked(Redactor()(f"https://api.telegram.org/bot{TELEGRAM_TOKEN}/x {DISCORD_TOKEN}")) == []


def test_a_webhook_without_its_secret_is_refused_at_start_and_the_refusal_quotes_no_secret(tmp_path, tiny_model_dir):
    """TELEGRAM_WEBHOOK_URL without TELEGRAM_WEBHOOK_SECRET would accept updates from anyone who finds the
    URL, as any user: the bot refuses to start (exit 2) and says which variable to set. The message is
    the rule alone: pydantic's own text quoted every variable's value, the token and the URL's path."""
    import os
    import subprocess

    path = "hook-path-7f3a9c"
    env = {
        **os.environ,
        "TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_WEBHOOK_URL": f"https://bot.example.org/{path}",
        "THO_DB": str(tmp_path / "tho.db"),
    }
    env.pop("TELEGRAM_WEBHOOK_SECRET", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "telegram", "--model", str(tiny_model_dir)],
        env=env,
        cwd=tmp_path,  # no .env from the checkout
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    assert "TELEGRAM_WEBHOOK_SECRET must be set" in done.stderr and "Traceback" not in done.stderr
    assert not leaked(done.stdout + done.stderr) and path not in done.stdout + done.stderr
    assert not (tmp_path / "tho.db").exists()  # refused before anything was opened
