"""Crawl state in SQLite: what is done, what is pending, what failed and why.

The state is what makes a crawl resumable: kill the process at any moment,
start it again with the same ``--state``, and it carries on. Three facts are
kept:

- listing pages done (with how many poem links each held; 0 = end of results),
  and listing pages that failed, with attempt counts;
- every poem URL ever seen on a listing, with a status -- ``pending``,
  ``done`` (its row is in the output file), ``failed`` (with attempts and the
  last error; retried on later runs up to a limit) or ``skipped`` (404, robots,
  a duplicate: never retried);
- the content key of every poem written, under a UNIQUE index, so the same
  poem under a second URL is refused by the database itself.

Every change is its own committed transaction (``synchronous=FULL``), so a kill
loses at most the step in progress. The output file, not this database, is the
truth about which poems are written: see :mod:`crawler.output`.

One process per state file: an exclusive ``flock`` on ``<state>.lock`` (freed
by the kernel even after ``kill -9``) stops a second crawler from interleaving
rows into the same output.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: A failed poem or listing page is tried at most this many runs in total.
MAX_ATTEMPTS = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pages (
    poem_type  INTEGER NOT NULL,
    page       INTEGER NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    links      INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (poem_type, page)
);
CREATE TABLE IF NOT EXISTS poems (
    url         TEXT PRIMARY KEY,
    poem_type   INTEGER,
    page        INTEGER,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    content_key TEXT,
    updated_at  REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS poems_done_content
    ON poems (content_key) WHERE status = 'done';
"""


class StateLocked(RuntimeError):
    """Another crawler holds this state file."""


class StateMismatch(RuntimeError):
    """The state file belongs to another site or poem type."""


@dataclass(frozen=True)
class PageRecord:
    status: str
    links: int | None
    attempts: int


class CrawlState:
    """The SQLite state file of one crawl (one site, one poem type, one output)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(f"{self.path}.lock", "a+")  # noqa: SIM115 - held for our lifetime
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateLocked(f"{self.path} is in use by another crawler") from None
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()
        self._lock.close()

    def __enter__(self) -> CrawlState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- identity ------------------------------------------------------------

    def bind(self, **identity: str) -> None:
        """Tie the state to a site/type/output on first use; refuse another later."""
        for key, value in identity.items():
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            elif row[0] != value:
                raise StateMismatch(f"{self.path} was made with {key}={row[0]!r}, not {value!r}")

    # -- listing pages -------------------------------------------------------

    def page(self, poem_type: int, page: int) -> PageRecord | None:
        row = self.db.execute(
            "SELECT status, links, attempts FROM pages WHERE poem_type = ? AND page = ?", (poem_type, page)
        ).fetchone()
        return PageRecord(*row) if row else None

    def record_listing(self, poem_type: int, page: int, urls: Iterable[str]) -> int:
        """Add a listing's poem URLs as pending and mark the page done, atomically.

        Returns how many URLs were new (not seen on an earlier page).
        """
        urls = list(dict.fromkeys(urls))
        now = time.time()
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany(
                "INSERT OR IGNORE INTO poems (url, poem_type, page, status, updated_at) VALUES (?, ?, ?, 'pending', ?)",
                [(url, poem_type, page, now) for url in urls],
            )
            new = self.db.total_changes - before
            self.db.execute(
                "INSERT INTO pages (poem_type, page, status, links, attempts, updated_at)"
                " VALUES (?, ?, 'done', ?, 1, ?)"
                " ON CONFLICT (poem_type, page) DO UPDATE SET status = 'done', links = excluded.links,"
                " attempts = attempts + 1, last_error = NULL, updated_at = excluded.updated_at",
                (poem_type, page, len(urls), now),
            )
        return new

    def record_page_failure(self, poem_type: int, page: int, error: str) -> None:
        self.db.execute(
            "INSERT INTO pages (poem_type, page, status, attempts, last_error, updated_at)"
            " VALUES (?, ?, 'failed', 1, ?, ?)"
            " ON CONFLICT (poem_type, page) DO UPDATE SET status = 'failed', attempts = attempts + 1,"
            " last_error = excluded.last_error, updated_at = excluded.updated_at",
            (poem_type, page, error, time.time()),
        )

    # -- poems ---------------------------------------------------------------

    def poems_to_fetch(self, *, max_attempts: int = MAX_ATTEMPTS) -> list[str]:
        """Pending poems, then failed ones still worth a try, in discovery order."""
        rows = self.db.execute(
            "SELECT url FROM poems WHERE status = 'pending' OR (status = 'failed' AND attempts < ?) ORDER BY rowid",
            (max_attempts,),
        ).fetchall()
        return [url for (url,) in rows]

    def status(self, url: str) -> str | None:
        row = self.db.execute("SELECT status FROM poems WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def done_with_content(self, key: str) -> str | None:
        """The URL already written with this content, if any."""
        row = self.db.execute("SELECT url FROM poems WHERE status = 'done' AND content_key = ?", (key,)).fetchone()
        return row[0] if row else None

    def mark_done(self, url: str, key: str) -> None:
        """Record that ``url``'s row is safely in the output file."""
        self.db.execute(
            "INSERT INTO poems (url, status, attempts, content_key, updated_at) VALUES (?, 'done', 1, ?, ?)"
            " ON CONFLICT (url) DO UPDATE SET status = 'done', attempts = attempts + 1, last_error = NULL,"
            " content_key = excluded.content_key, updated_at = excluded.updated_at",
            (url, key, time.time()),
        )

    def mark_failed(self, url: str, error: str) -> None:
        self._set(url, "failed", error, count_attempt=True)

    def mark_skipped(self, url: str, reason: str) -> None:
        self._set(url, "skipped", reason, count_attempt=True)

    def reopen(self, url: str) -> None:
        """Back to pending: its row is not in the output after all."""
        self.db.execute(
            "UPDATE poems SET status = 'pending', content_key = NULL, updated_at = ? WHERE url = ?",
            (time.time(), url),
        )

    def done_urls(self) -> set[str]:
        return {url for (url,) in self.db.execute("SELECT url FROM poems WHERE status = 'done'")}

    def counts(self) -> dict[str, int]:
        """Poems by status, plus listing pages done and failed."""
        result = dict(self.db.execute("SELECT status, COUNT(*) FROM poems GROUP BY status").fetchall())
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM pages GROUP BY status"):
            result[f"pages_{status}"] = n
        return result

    def _set(self, url: str, status: str, error: str, *, count_attempt: bool) -> None:
        self.db.execute(
            "INSERT INTO poems (url, status, attempts, last_error, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (url) DO UPDATE SET status = excluded.status, attempts = attempts + ?,"
            " last_error = excluded.last_error, updated_at = excluded.updated_at",
            (url, status, int(count_attempt), error, time.time(), int(count_attempt)),
        )

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (or ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def default_state_path(out: str | Path) -> Path:
    """``poems.jsonl`` -> ``poems.jsonl.state.sqlite``, next to the output."""
    return Path(os.fspath(out) + ".state.sqlite")
