"""The real `python -m bot` entry point as a child process: started as an operator would, its output read
as it comes, stopped with Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import warnings
from dataclasses import dataclass, field


@dataclass
class RunningBot:
    """A bot process and everything it has printed so far, read as it comes: a bot that has to be killed
    still shows its log (reading only at the end lost it when the read was cut short)."""

    process: asyncio.subprocess.Process
    output: bytearray = field(default_factory=bytearray)
    reader: asyncio.Task | None = None


async def _collect(bot: RunningBot) -> None:
    while chunk := await bot.process.stdout.read(65536):
        bot.output += chunk


def ctrl_c_stops_it() -> None:
    """In the child: Ctrl-C's default action. A suite started in the background by a non-interactive shell
    (`make test &`) has SIGINT ignored, children inherit that, and Python then installs no KeyboardInterrupt:
    the bot would never see the Ctrl-C the test sends (it was killed after 60 s and its log read lost)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def start_bot(mode: str, flags: tuple[str, ...], level: str | None, env: dict[str, str]) -> RunningBot:
    env = {**os.environ, "THO_MODEL_WATCH_SECONDS": "0", "PYTHONUNBUFFERED": "1", **env}
    env.pop("THO_LOG_LEVEL", None)
    if level:
        env["THO_LOG_LEVEL"] = level
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        mode,
        *flags,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=ctrl_c_stops_it,
    )
    bot = RunningBot(process)
    bot.reader = asyncio.create_task(_collect(bot))
    return bot


async def stop_bot(bot: RunningBot, sig: signal.Signals = signal.SIGINT) -> str:
    """Ctrl-C (or `sig`), as an operator stops it; killed after 60 s (said as a warning: that is not how a bot
    should stop)."""
    if bot.process.returncode is None:
        bot.process.send_signal(sig)
    try:
        await asyncio.wait_for(bot.process.wait(), 60)
    except TimeoutError:
        warnings.warn(f"the bot did not stop within 60 s of {sig.name} and was killed", stacklevel=2)
        bot.process.kill()
        await bot.process.wait()
    try:
        await asyncio.wait_for(bot.reader, 10)
    except TimeoutError:
        bot.reader.cancel()
    return bot.output.decode("utf-8", "replace")
