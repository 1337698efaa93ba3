"""Console adapter: try the bot without any token.

Reads commands from stdin line by line (a prompt when stdin is a terminal) and
prints replies to stdout. Buttons are printed as hints; press one by typing
its action, e.g. `!rate:3:5`. Settings and ratings persist in the database
like on any platform.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from bot.core import Core, Reply

USER_KEY = "console:local"
PROMPT = "thơ> "


def render(reply: Reply) -> str:
    lines = [reply.text]
    for row in reply.buttons:
        lines.append("  ".join(f"[{b.label}] !{b.action}" for b in row))
    return "\n".join(lines)


async def handle_line(core: Core, line: str, user: str = USER_KEY) -> Reply | None:
    line = line.strip()
    if not line:
        return None
    if line.startswith("!"):
        return await core.action(user, line[1:])
    if line.startswith("/"):
        name, _, args = line[1:].partition(" ")
        return await core.command(user, name.split("@")[0], args)
    # Plain text is an opening line: the console's shortcut for /tho.
    return await core.command(user, "tho", line)


async def run_console(core: Core, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    interactive = stdin.isatty()
    if interactive:
        stdout.write(render(await core.start(USER_KEY)) + "\n")
    while True:
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        reply = await handle_line(core, line)
        if reply is not None:
            stdout.write(render(reply) + "\n\n")
            stdout.flush()
