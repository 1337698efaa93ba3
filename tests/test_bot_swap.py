"""`python -m bot swap` switches every running bot to a new model, dropping nothing."""

import asyncio
import logging
import subprocess
import sys

from bot.config import Settings
from bot.console import handle_line
from bot.runtime import open_runtime
from tests.helpers import core_settings


async def test_running_bot_follows_the_serving_model(tiny_model_dir, tiny_model_dir_b, tmp_path):
    settings = Settings(
        THO_MODEL=tiny_model_dir, THO_DB=tmp_path / "tho.db", THO_MODEL_WATCH_SECONDS=0.2, THO_POEMS_PER_MINUTE=100
    )
    async with open_runtime(settings) as rt:
        first = await handle_line(rt.core, "/tho Mùa thu lá vàng rơi")
        assert (await rt.store.get_poem(first.poem_id)).model_version == "tiny-a"
        in_flight = [
            asyncio.create_task(rt.core.command(f"console:u{i}", "tho", "Trăm năm trong cõi người ta"))
            for i in range(5)
        ]
        swap = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "bot", "swap", "--model", str(tiny_model_dir_b), "--db", str(settings.db)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert swap.returncode == 0, swap.stderr
        for _ in range(200):
            if rt.engine.model_version == "tiny-b":
                break
            await asyncio.sleep(0.1)
        assert rt.engine.model_version == "tiny-b"
        replies = await asyncio.gather(*in_flight)
        assert all(r.poem_id for r in replies)  # nothing dropped by the swap
        after = await handle_line(rt.core, "/tho Mùa thu lá vàng rơi")
        assert (await rt.store.get_poem(after.poem_id)).model_version == "tiny-b"
        assert (await rt.store.serving_model()).version == "tiny-b"


def test_swap_command_refuses_a_model_that_is_not_syllable_level(tiny_bpe_model_dir, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "bot", "swap", "--model", str(tiny_bpe_model_dir), "--db", str(tmp_path / "tho.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and "không viết theo từng tiếng" in done.stderr
    assert not (tmp_path / "tho.db").exists()  # nothing recorded


async def test_watcher_keeps_serving_when_the_recorded_model_cannot_be_served(
    tiny_model_dir, tiny_bpe_model_dir, tmp_path, caplog
):
    """Another process recorded a model this bot refuses: one warning, no traceback, the same model serves."""
    settings = core_settings(tiny_model_dir, tmp_path)
    caplog.set_level(logging.INFO, logger="bot")
    async with open_runtime(settings) as rt:
        await rt.store.record_model_version("tiny-bpe", str(tiny_bpe_model_dir), status="serving")
        for _ in range(3):
            assert await rt.follow_serving_model() is None
        assert rt.engine.model_version == "tiny-a"
        reply = await handle_line(rt.core, "/tho Mùa thu lá vàng rơi")
        assert (await rt.store.get_poem(reply.poem_id)).model_version == "tiny-a"
    warnings = [r for r in caplog.records if "cannot serve model tiny-bpe" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None
