"""Console adapter: try the bot without any token.

Reads commands from stdin line by line (a prompt when stdin is a terminal) and
prints replies to stdout. Buttons are printed as hints; press one by typing
its action, e.g. `!rate:3:5`. Settings and ratings persist in the database
like on any platform. Pictures (/anh, /giaithich, the 🖼 button) are written
as PNG files to THO_CONSOLE_PICTURES (default: the current folder).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import TextIO

from bot import texts
from bot.core import Core, Reply
from engine.engine import LinesCallback
from engine.request import poem_text

USER_KEY = "console:local"
PROMPT = "thơ> "


def render(reply: Reply, saved: Path | None = None) -> str:
    lines = [reply.text] if saved is None else [texts.CONSOLE_PICTURE.format(path=saved), reply.text]
    for row in reply.buttons:
        lines.append("  ".join(f"[{b.label}] !{b.action}" for b in row))
    return "\n".join(lines)


async def handle_line(
    core: Core, line: str, user: str = USER_KEY, on_lines: LinesCallback | None = None
) -> Reply | None:
    line = line.strip()
    if not line:
        return None
    if line.startswith("!"):
        return await core.action(user, line[1:])
    if line.startswith("/"):
        name, _, args = line[1:].partition(" ")
        return await core.command(user, name.split("@")[0], args, on_lines=on_lines)
    # Plain text is an opening line: the console's shortcut for /tho.
    return await core.command(user, "tho", line, on_lines=on_lines)


class LinePrinter:
    """Prints a poem's lines as the engine finishes them; the reply then prints only what is left."""

    def __init__(self, stdout: TextIO):
        self.stdout = stdout
        self.printed = ""  # the poem text printed so far

    def __call__(self, lines: tuple[str, ...]) -> None:
        text = poem_text(lines) + "\n"
        if text.startswith(self.printed):
            self.stdout.write(text[len(self.printed) :])
            self.stdout.flush()
            self.printed = text

    def rest_of(self, reply: Reply) -> str:
        shown = render(reply)
        return shown[len(self.printed) :] if self.printed and shown.startswith(self.printed) else shown


def save_picture(reply: Reply, folder: Path) -> Path:
    """A picture reply's PNG, written to `folder` under the next free name (tho-1.png, tho-2.png, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while (folder / f"tho-{n}.png").exists():
        n += 1
    path = folder / f"tho-{n}.png"
    path.write_bytes(reply.image)
    return path


async def read_line(stdin: TextIO) -> str:
    """The next line of stdin, read in a daemon thread. asyncio.to_thread's pool thread would keep a
    stopping bot (Ctrl-C, SIGTERM) waiting at exit until the user pressed Enter; a daemon thread does not."""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def deliver(setter, value) -> None:  # in the loop, if the read is still awaited
        if not line.done():
            setter(value)

    def read() -> None:
        try:
            result, setter = stdin.readline(), line.set_result
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting task
            result, setter = exc, line.set_exception
        try:
            loop.call_soon_threadsafe(deliver, setter, result)
        except RuntimeError:  # the loop is closed: the bot has stopped, nobody awaits the line
            pass

    threading.Thread(target=read, name="console-stdin", daemon=True).start()
    return await line


async def run_console(
    core: Core,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stream: bool = True,
    pictures: Path = Path("."),
) -> None:
    interactive = stdin.isatty()
    if interactive:
        stdout.write(render(await core.start(USER_KEY)) + "\n")
    while True:
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        line = await read_line(stdin)
        if not line:
            break
        printer = LinePrinter(stdout) if stream else None
        reply = await handle_line(core, line, on_lines=printer)
        if reply is not None and reply.image is not None:
            rest = render(reply, await asyncio.to_thread(save_picture, reply, pictures))
        elif reply is not None:
            # An error after some lines were printed starts on its own line, whole.
            rest = printer.rest_of(reply) if printer and not (reply.error or reply.failed) else render(reply)
        if reply is not None:
            stdout.write(rest + "\n\n")
            stdout.flush()
