"""The output JSONL: crash-safe appends, and reconciliation with the state.

Two stores -- the JSONL file and the SQLite state -- cannot be updated in one
atomic step, so the order is fixed and the file is the truth:

1. append the row as one ``write`` of a complete line, ``flush`` and ``fsync``;
2. only then mark the URL ``done`` in the state.

A kill can land anywhere; on the next start :func:`reconcile` repairs each case
before any crawling:

- killed inside (1): the file ends in a partial line; it is cut back to the
  last newline, the URL is still pending, and it is fetched again;
- killed between (1) and (2): the row is whole but the state does not say
  ``done``; the row is adopted (marked done with its content key), so it is
  neither written twice nor lost;
- a URL the state calls done whose row is missing (file truncated, replaced or
  deleted by hand): it goes back to pending and is fetched again;
- duplicate rows (by URL or by content), which the steps above never create,
  are dropped by rewriting the file atomically (temporary file + rename).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .state import CrawlState
from .text import content_key

log = logging.getLogger(__name__)


@dataclass
class Reconciled:
    """What :func:`reconcile` found and fixed."""

    rows: int = 0
    adopted: int = 0
    reopened: int = 0
    truncated_bytes: int = 0
    dropped: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent or Path("."), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JsonlWriter:
    """Append rows durably: a row is on disk when :meth:`append` returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        self._file: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        if not existed:
            _fsync_dir(self.path)

    def append(self, row: dict) -> None:
        data = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def row_key(row: dict) -> str:
    return content_key([line for line in row.get("lines", []) if isinstance(line, str)])


def reconcile(path: str | Path, state: CrawlState) -> Reconciled:
    """Make the state agree with the rows in ``path`` (see the module docstring)."""
    path = Path(path)
    report = Reconciled()
    rows: list[dict] = []
    if path.exists():
        data = path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            report.truncated_bytes = len(data) - end
            log.warning(
                "output ends in a partial row (%d bytes, killed mid-write?): cutting it", report.truncated_bytes
            )
            with open(path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
            data = data[:end]
        seen_urls: set[str] = set()
        seen_keys: set[str] = set()
        for raw in data.splitlines():
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except ValueError:
                report.dropped += 1
                continue
            url, key = row.get("url"), row_key(row)
            if (url and url in seen_urls) or key in seen_keys:
                report.dropped += 1
                continue
            if url:
                seen_urls.add(url)
            seen_keys.add(key)
            rows.append(row)
        if report.dropped:
            log.warning("dropping %d duplicate or unreadable rows from %s", report.dropped, path)
            _rewrite(path, rows)
    report.rows = len(rows)

    in_file = {row["url"]: row for row in rows if row.get("url")}
    for url in state.done_urls() - in_file.keys():
        state.reopen(url)
        report.reopened += 1
    for url, row in in_file.items():
        if state.status(url) != "done":
            try:
                state.mark_done(url, row_key(row))
            except sqlite3.IntegrityError:  # same content recorded under another URL
                log.warning("row %s duplicates a poem the state already holds; not refetching it", url)
                state.mark_skipped(url, "duplicate content (found in output)")
                continue
            report.adopted += 1
    if report.adopted or report.reopened:
        log.info("reconciled output with state: %d rows adopted, %d URLs reopened", report.adopted, report.reopened)
    return report


def _rewrite(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path)
