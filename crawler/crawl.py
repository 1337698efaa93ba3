"""The crawl loop: listing pages, then their poems, one request at a time.

Order of work, chosen so that a resumed crawl does exactly what an
uninterrupted one would have done:

1. reconcile the output file with the state (:func:`crawler.output.reconcile`);
2. finish poems left pending (or failed, under the attempt limit) by earlier runs;
3. for listing pages 1..max_pages not yet done: load the page, record its poem
   URLs and the page as done in one transaction, then fetch those poems.

Limits count the whole crawl, not one run: ``--max-pages 5`` means pages 1-5
whatever run fetched them, ``--max-poems 100`` means 100 rows in the output.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from selenium.common.exceptions import WebDriverException
from tqdm import tqdm

from . import ROBOTS_AGENT, USER_AGENT
from .browser import DEFAULT_PAGE_TIMEOUT_S, Browser, PageLoad
from .extract import Malformed, listing_links, poem_row
from .output import JsonlWriter, reconcile
from .polite import (
    DEFAULT_BACKOFF_S,
    DEFAULT_DELAY_S,
    MAX_RETRY_AFTER_S,
    MAX_TRANSIENT_RETRIES,
    Throttle,
    backoff_seconds,
    parse_retry_after,
)
from .robots import Robots, fetch_robots
from .signals import STOP
from .site import DEFAULT_BASE_URL, Thivien
from .state import MAX_ATTEMPTS, CrawlState
from .text import content_key

log = logging.getLogger(__name__)

#: Statuses that mean "this URL will never hold a poem": skipped, not failed.
GONE = frozenset({404, 410})
#: Statuses worth waiting for and retrying.
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})


#: Exit status when the site asked us to come back later (sysexits EX_TEMPFAIL).
EXIT_TRY_LATER = 75


class StopCrawl(Exception):
    """The site asked us to go away for a while; stop now, resume later."""


@dataclass
class CrawlConfig:
    poem_type: int
    out: Path
    state: Path
    base_url: str = DEFAULT_BASE_URL
    max_pages: int = 10
    max_poems: int | None = None
    delay: float = DEFAULT_DELAY_S
    backoff: float = DEFAULT_BACKOFF_S
    retries: int = MAX_TRANSIENT_RETRIES
    page_timeout: float = DEFAULT_PAGE_TIMEOUT_S
    user_agent: str = USER_AGENT
    progress: bool = True


@dataclass
class Summary:
    """Counts for this run; ``total_poems`` is what the output file holds."""

    pages: int = 0
    poems: int = 0
    failures: int = 0
    skipped: Counter = field(default_factory=Counter)
    total_poems: int = 0
    adopted: int = 0
    stopped: str = ""
    seconds: float = 0.0
    #: 0 done, 75 try again later, 130 interrupted, 1 browser failure.
    exit_code: int = 0

    def render(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        lines = [
            "crawl summary",
            f"  listing pages: {self.pages}",
            f"  poems written: {self.poems} (output now holds {self.total_poems})",
            f"  failures:      {self.failures}",
            f"  skipped:       {skipped}" + (f" ({reasons})" if reasons else ""),
            f"  stopped:       {self.stopped}",
            f"  time:          {self.seconds:.1f}s",
        ]
        if self.adopted:
            lines.insert(3, f"  recovered:     {self.adopted} rows written by an interrupted run")
        return "\n".join(lines)


class Crawler:
    """One crawl of one poem type; :meth:`run` does it and returns the summary."""

    def __init__(self, config: CrawlConfig) -> None:
        self.cfg = config
        self.site = Thivien(config.base_url)
        self.summary = Summary()
        self._tried: set[str] = set()
        self._done = 0
        self.state: CrawlState
        self.robots: Robots
        self.browser: Browser
        self.writer: JsonlWriter
        self.throttle: Throttle
        self.bar: tqdm

    # -- the run -------------------------------------------------------------

    def run(self) -> Summary:
        started = time.monotonic()
        cfg = self.cfg
        with CrawlState(cfg.state) as self.state:
            self.state.bind(base_url=self.site.base_url.rstrip("/"), poem_type=str(cfg.poem_type))
            fixed = reconcile(cfg.out, self.state)
            self.summary.adopted = fixed.adopted
            self._done = fixed.rows
            try:
                self._crawl()
            except StopCrawl as stop:
                self.summary.stopped, self.summary.exit_code = str(stop), EXIT_TRY_LATER
            except KeyboardInterrupt:
                self.summary.stopped, self.summary.exit_code = "interrupted", 130
            except WebDriverException as err:  # Chromium died or would not start
                log.error("browser failure: %s", err)
                self.summary.stopped, self.summary.exit_code = "browser failure", 1
            self.summary.total_poems = len(self.state.done_urls())
        self.summary.seconds = time.monotonic() - started
        return self.summary

    def _crawl(self) -> None:
        cfg = self.cfg
        self.robots = fetch_robots(self.site.robots_url(), user_agent=cfg.user_agent, agent=ROBOTS_AGENT)
        if self.robots.unreachable:
            raise StopCrawl("robots.txt unreachable; try again later")
        delay = max(cfg.delay, self.robots.crawl_delay() or 0.0)
        if delay > cfg.delay:
            log.info("robots.txt asks for a crawl delay of %.1fs", delay)
        self.throttle = Throttle(delay)
        with (
            Browser(user_agent=cfg.user_agent, page_timeout=cfg.page_timeout) as self.browser,
            JsonlWriter(cfg.out) as self.writer,
            tqdm(
                total=cfg.max_poems, initial=self._done, unit="poem", disable=not cfg.progress, dynamic_ncols=True
            ) as self.bar,
        ):
            self._poems()  # left over from an earlier run
            self.summary.stopped = f"max pages ({cfg.max_pages})"
            for page in range(1, cfg.max_pages + 1):
                if self._enough():
                    break
                if not self._listing(page):
                    break
                self._poems()
            if self._enough():
                self.summary.stopped = f"max poems ({cfg.max_poems})"

    def _enough(self) -> bool:
        return self.cfg.max_poems is not None and self._done >= self.cfg.max_poems

    # -- listing pages -------------------------------------------------------

    def _listing(self, page: int) -> bool:
        """Record listing ``page``'s poem links; False when the results ended."""
        cfg = self.cfg
        record = self.state.page(cfg.poem_type, page)
        if record is not None and record.status == "done":
            if record.links == 0:
                self.summary.stopped = "end of results"
                return False
            return True
        if record is not None and record.attempts >= MAX_ATTEMPTS:
            return True
        url = self.site.listing_url(cfg.poem_type, page)
        if not self.robots.allowed(url):
            self.summary.skipped["forbidden by robots.txt"] += 1
            self.summary.stopped = "listing pages forbidden by robots.txt"
            return False
        self.bar.set_postfix_str(f"listing page {page}")
        load = self._fetch(url)
        if not _ok(load):
            log.warning("listing page %d failed: %s", page, _why(load))
            self.state.record_page_failure(cfg.poem_type, page, _why(load))
            self.summary.failures += 1
            return True
        links = listing_links(self.browser, self.site)
        new = self.state.record_listing(cfg.poem_type, page, links)
        self.summary.pages += 1
        log.info("listing page %d: %d poem links (%d new)", page, len(links), new)
        if not links:
            self.summary.stopped = "end of results"
            return False
        return True

    # -- poems ---------------------------------------------------------------

    def _poems(self) -> None:
        for url in self.state.poems_to_fetch():
            if self._enough():
                return
            if url in self._tried:
                continue
            self._tried.add(url)
            self._poem(url)

    def _poem(self, url: str) -> None:
        if not self.robots.allowed(url):
            self._skip(url, "forbidden by robots.txt")
            return
        load = self._fetch(url)
        if load.status in GONE:
            self._skip(url, f"HTTP {load.status}")
            return
        if not _ok(load):
            self._fail(url, _why(load))
            return
        try:
            row = poem_row(self.browser, self.site, url, self.cfg.poem_type)
        except Malformed as err:
            self._fail(url, f"malformed page: {err}")
            return
        key = content_key(row["lines"])
        twin = self.state.done_with_content(key)
        if twin is not None and twin != url:
            self._skip(url, "duplicate content", detail=f"same poem as {twin}")
            return
        # Order matters: the row is durable on disk before the state says done;
        # a polite stop waits for both.
        with STOP.critical():
            self.writer.append(row)
            self.state.mark_done(url, key)
            self._done += 1
            self.summary.poems += 1
        self.bar.update(1)

    def _skip(self, url: str, reason: str, *, detail: str = "") -> None:
        log.info("skip %s: %s", url, detail or reason)
        self.state.mark_skipped(url, detail or reason)
        self.summary.skipped[reason] += 1
        self._postfix()

    def _fail(self, url: str, error: str) -> None:
        log.warning("failed %s: %s", url, error)
        self.state.mark_failed(url, error)
        self.summary.failures += 1
        self._postfix()

    def _postfix(self) -> None:
        self.bar.set_postfix(failed=self.summary.failures, skipped=sum(self.summary.skipped.values()))

    # -- fetching with back-off ----------------------------------------------

    def _fetch(self, url: str) -> PageLoad:
        """Load ``url``, retrying 429/5xx/timeouts with exponential back-off.

        Raises :class:`StopCrawl` when the site keeps saying 429 or asks for a
        Retry-After beyond ``MAX_RETRY_AFTER_S``: hammering on would be rude.
        """
        for attempt in range(self.cfg.retries + 1):
            self.throttle.wait()
            load = self.browser.load(url)
            transient = load.status is None or load.status in TRANSIENT or load.status >= 500
            if not transient:
                return load
            retry_after = parse_retry_after(load.header("Retry-After"))
            if retry_after is not None and retry_after > MAX_RETRY_AFTER_S:
                raise StopCrawl(f"site asked to retry after {retry_after:.0f}s; resume later")
            if attempt == self.cfg.retries:
                if load.status == 429:
                    raise StopCrawl("still rate limited (HTTP 429) after retries; resume later")
                return load
            wait = backoff_seconds(attempt, self.cfg.backoff, retry_after)
            log.warning("%s: %s; retry %d in %.1fs", url, _why(load), attempt + 1, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")


def _ok(load: PageLoad) -> bool:
    return load.status is not None and 200 <= load.status < 400


def _why(load: PageLoad) -> str:
    return f"HTTP {load.status}" if load.status is not None else (load.error or "no response")
