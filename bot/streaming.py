"""A chat message that shows a poem growing line by line while the engine writes it.

The engine calls `LiveMessage.lines` (synchronously, from its decoding loop)
each time a line is finished; this class hands the text to the platform on its
own task, so a slow chat API never slows decoding. Platforms limit edits
(Telegram: about one message a second per chat, 20 a minute in a group;
Discord: 5 edits per 5 s per channel), so the message changes at most once per
`interval` seconds: lines finished in between arrive together in the next
edit. That is also "at most one edit per line".

`finish` stops the task; the adapter then writes the final message itself
(the whole poem with its rating buttons, or an error that replaces the half
poem), so a stream that breaks half-way never leaves a half poem unexplained.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot import texts
from engine.request import poem_text

log = logging.getLogger(__name__)

STREAM_INTERVAL_SECONDS = 1.0  # private chats and Discord: at most one edit a second
GROUP_STREAM_INTERVAL_SECONDS = 3.0  # Telegram groups: at most 20 messages a minute


class LiveMessage:
    """Pushes the latest finished lines through `show` (send, then edit), at most once per `interval`."""

    def __init__(self, show: Callable[[str], Awaitable[None]], interval: float = STREAM_INTERVAL_SECONDS):
        self._show = show
        self._interval = interval
        self._latest: str | None = None  # text not shown yet
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()  # no push in progress
        self._idle.set()
        self.shown = 0  # texts shown (the first one is the message itself, the rest edits)
        self.failed = False  # a push failed: the adapter sends the final reply as a new message

    def lines(self, lines: tuple[str, ...]) -> None:
        """The engine's callback: the poem's finished lines so far."""
        self._latest = poem_text(lines) + "\n" + texts.STREAM_WRITING
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            text, self._latest = self._latest, None
            if text is None:
                continue
            self._idle.clear()
            try:
                await self._show(text)
                self.shown += 1
            except Exception:  # noqa: BLE001 - a lost edit must not fail the poem; the final reply follows
                log.warning("showing a poem line by line failed; the whole poem follows", exc_info=True)
                self.failed = True
                return
            finally:
                self._idle.set()
            await asyncio.sleep(self._interval)

    async def finish(self) -> bool:
        """Stop showing lines; True when a message is on screen for the final reply to replace."""
        task, self._task = self._task, None
        if task is not None:
            # A push in progress ends first (the final edit must come after it, and a message
            # half-sent would be lost to us); the wait between pushes is cut short.
            await self._idle.wait()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return self.shown > 0 and not self.failed
