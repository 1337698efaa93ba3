"""Pacing: a delay with jitter between requests, and back-off when told off.

One request at a time. Before each request :class:`Throttle` waits until
``delay`` (plus up to ``JITTER_FRACTION`` of it, so requests do not tick like a
metronome) has passed since the previous one. After a 429 or a 5xx the caller
waits :func:`backoff_seconds`: exponential in the attempt number with "equal
jitter", and never shorter than the server's Retry-After.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

DEFAULT_DELAY_S = 3.0
JITTER_FRACTION = 0.5
DEFAULT_BACKOFF_S = 5.0
MAX_BACKOFF_S = 300.0
#: A Retry-After longer than this stops the crawl (resume it later) rather
#: than holding a browser open for hours.
MAX_RETRY_AFTER_S = 900.0
#: Transient failures (429, 5xx, timeouts) retried per URL within one run.
MAX_TRANSIENT_RETRIES = 4


class Throttle:
    """Space requests ``delay`` seconds apart, plus jitter."""

    def __init__(
        self,
        delay: float,
        *,
        jitter: float = JITTER_FRACTION,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.delay = max(0.0, delay)
        self.jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._last: float | None = None

    def wait(self) -> float:
        """Sleep until the next request may go; return the seconds slept."""
        slept = 0.0
        if self._last is not None and self.delay > 0:
            gap = self.delay * (1.0 + self._rng.uniform(0.0, self.jitter))
            slept = max(0.0, self._last + gap - self._clock())
            if slept:
                self._sleep(slept)
        self._last = self._clock()
        return slept


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def backoff_seconds(
    attempt: int,
    base: float,
    retry_after: float | None = None,
    *,
    cap: float = MAX_BACKOFF_S,
    rng: random.Random | None = None,
) -> float:
    """Wait before retry number ``attempt`` (0 for the first retry)."""
    rng = rng or random.Random()
    step = min(cap, base * (2**attempt))
    wait = step / 2 + rng.uniform(0.0, step / 2)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return wait
