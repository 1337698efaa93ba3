"""Polite stops (Ctrl-C, SIGTERM) that never split a row from its state record.

Writing a poem is two steps -- fsync the row, then mark it done in SQLite (see
:mod:`crawler.output`). ``kill -9`` can land between them and the next run
repairs that, but a *polite* stop has no excuse to: while a step pair is in
progress the signal is only noted, and :class:`KeyboardInterrupt` is raised
as soon as the pair is complete. Blocking the signal with ``pthread_sigmask``
would not do: it is per thread, and tqdm's monitor thread could still take it.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """SIGINT/SIGTERM raise KeyboardInterrupt, but not inside :meth:`critical`."""

    def __init__(self) -> None:
        self._depth = 0
        self._pending: int | None = None

    def install(self) -> Callable[[], None]:
        """Take over SIGINT and SIGTERM; returns a function that gives them back."""
        previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _handle(self, signum: int, frame: object) -> None:
        if self._depth:
            self._pending = signum
            return
        raise KeyboardInterrupt

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A block that a polite stop waits for."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if not self._depth and self._pending is not None:
            self._pending = None
            raise KeyboardInterrupt


#: The process-wide instance: the CLI installs it, the crawl loop uses it.
STOP = GracefulStop()
