"""Command line: ``python -m crawler thivien --type <n> --max-pages N --out FILE.jsonl``.

Run the same command again (same ``--out`` and ``--state``) to resume an
interrupted crawl or to extend it with a larger ``--max-pages``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from urllib.parse import urlsplit

from .browser import DEFAULT_PAGE_TIMEOUT_S
from .crawl import CrawlConfig, Crawler
from .polite import DEFAULT_BACKOFF_S, DEFAULT_DELAY_S, MAX_TRANSIENT_RETRIES
from .signals import STOP
from .site import DEFAULT_BASE_URL
from .state import StateLocked, StateMismatch, default_state_path


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _base_url(text: str) -> str:
    """An http(s) site root: "www.thivien.net" or "file:///..." are refused with a usage message."""
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL (e.g. {DEFAULT_BASE_URL})")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is no number or out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has an invalid port") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise argparse.ArgumentTypeError(f"{text!r}: give only the site root, without ?query, #fragment or user")
    return text.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m crawler", description=__doc__.splitlines()[0])
    sites = parser.add_subparsers(dest="site", required=True)
    p = sites.add_parser("thivien", help="crawl thivien.net poems of one type")
    p.add_argument("--type", dest="poem_type", type=int, required=True, help="thivien PoemType number")
    p.add_argument("--max-pages", type=_positive_int, default=10, help="listing pages to crawl (default 10)")
    p.add_argument("--max-poems", type=_positive_int, default=None, help="stop when the output holds this many poems")
    p.add_argument("--out", type=Path, required=True, help="output JSONL (appended to; corpus row schema)")
    p.add_argument("--state", type=Path, default=None, help="SQLite crawl state (default: OUT.state.sqlite)")
    p.add_argument(
        "--delay",
        type=_seconds,
        default=DEFAULT_DELAY_S,
        help=f"seconds between requests, plus jitter (default {DEFAULT_DELAY_S})",
    )
    p.add_argument(
        "--backoff",
        type=_seconds,
        default=DEFAULT_BACKOFF_S,
        help=f"first back-off after 429/5xx, doubling (default {DEFAULT_BACKOFF_S})",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=MAX_TRANSIENT_RETRIES,
        help=f"retries per URL on 429/5xx/timeouts (default {MAX_TRANSIENT_RETRIES})",
    )
    p.add_argument(
        "--page-timeout",
        type=_seconds,
        default=DEFAULT_PAGE_TIMEOUT_S,
        help=f"page load timeout (default {DEFAULT_PAGE_TIMEOUT_S:.0f}s)",
    )
    p.add_argument(
        "--base-url", type=_base_url, default=DEFAULT_BASE_URL, help=f"site root (default {DEFAULT_BASE_URL})"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log every page")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM stops like Ctrl-C: Chromium is closed and the summary printed,
    # never between a row and its state record (SIGKILL can't be caught; the
    # next run reconciles, see crawler.output).
    restore_signals = STOP.install()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = CrawlConfig(
        poem_type=args.poem_type,
        out=args.out,
        state=args.state or default_state_path(args.out),
        base_url=args.base_url,
        max_pages=args.max_pages,
        max_poems=args.max_poems,
        delay=args.delay,
        backoff=args.backoff,
        retries=args.retries,
        page_timeout=args.page_timeout,
        progress=not args.no_progress,
    )
    try:
        summary = Crawler(config).run()
    except (StateLocked, StateMismatch) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        restore_signals()
    print(summary.render(), flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
