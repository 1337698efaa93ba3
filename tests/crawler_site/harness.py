"""Helpers for the browser tests: the crawler command line, and a crashing crawler.

Run as a script, ``harness.py crash-after-write N <crawler args>`` runs the
crawler in this process but dies with ``os._exit`` right after the N-th row is
fsynced to the output and *before* the state records it: the worst moment for
a kill, made deterministic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
#: Short but non-zero: exercises the throttle without slowing the tests much.
TEST_DELAY_S = "0.05"
TEST_BACKOFF_S = "0.1"
#: Every poem of the fixture site that may be crawled (each exactly once).
EXPECTED_SLUGS = frozenset(
    {
        "poem-chieu-que",
        "poem-mua-dem",
        "poem-cham-cham",
        "poem-dong-song",
        "poem-nghi-chut",
        "poem-tro-lai",
        "poem-hoa-sen",
        "poem-canh-co",
    }
)


def crawl_args(base_url: str, out: Path, *extra: str, delay: str = TEST_DELAY_S) -> list[str]:
    return [
        "thivien",
        "--type",
        "2",
        "--max-pages",
        "10",
        "--out",
        str(out),
        "--delay",
        delay,
        "--backoff",
        TEST_BACKOFF_S,
        "--page-timeout",
        "20",
        "--base-url",
        base_url,
        "--no-progress",
        "-v",
        *extra,
    ]


def crawl(
    base_url: str, out: Path, *extra: str, delay: str = TEST_DELAY_S, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run ``python -m crawler`` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "crawler", *crawl_args(base_url, out, *extra, delay=delay)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_crawl(
    base_url: str, out: Path, log: Path, *, delay: str, crash_after_write: int | None = None
) -> subprocess.Popen:
    """Start the crawler in its own session, so that :func:`kill_hard` can take
    Chromium and chromedriver down with it. With ``crash_after_write=N`` it
    dies by itself after the N-th row (see the module docstring)."""
    head = ["-m", "crawler"] if crash_after_write is None else [__file__, "crash-after-write", str(crash_after_write)]
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [sys.executable, *head, *crawl_args(base_url, out, delay=delay)],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_hard(proc: subprocess.Popen) -> None:
    """kill -9 the crawler and everything it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def count_rows(path: Path) -> int:
    """Complete rows in the output (a partial last line does not count)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def wait_for_rows(proc: subprocess.Popen, path: Path, n: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = count_rows(path)
        if rows >= n or proc.poll() is not None:
            return rows
        time.sleep(0.01)
    raise TimeoutError(f"{path} did not reach {n} rows")


def rows_by_path(path: Path) -> dict[str, dict]:
    """Rows keyed by URL path (fixture sites on different ports compare equal)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_path = {}
    for row in rows:
        key = "/" + row["url"].split("/", 3)[3]
        by_path[key] = {**row, "url": key}
    assert len(by_path) == len(rows), "a poem was written twice"
    return by_path


def _crash_after_write(n: int, argv: list[str]) -> int:
    from crawler import __main__ as cli
    from crawler.output import JsonlWriter

    append = JsonlWriter.append
    written = [0]

    def append_then_die(self: JsonlWriter, row: dict) -> None:
        append(self, row)
        written[0] += 1
        if written[0] == n:
            os._exit(137)  # row durable, state not yet updated

    JsonlWriter.append = append_then_die  # type: ignore[method-assign]
    return cli.main(argv)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    if len(sys.argv) > 2 and sys.argv[1] == "crash-after-write":
        sys.exit(_crash_after_write(int(sys.argv[2]), sys.argv[3:]))
    sys.exit("usage: harness.py crash-after-write N <crawler args>")
