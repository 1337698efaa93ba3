"""`python -m bot swap` switches every running bot to a new model, dropping nothing."""

import asyncio
import subprocess
import sys

from bot.config import Settings
from bot.console import handle_line
from bot.runtime import open_runtime


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
