"""Crawler parts that need no browser: text, robots, pacing, state, output."""

from __future__ import annotations

import json
import random
import sqlite3
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.__main__ import build_parser
from crawler.output import JsonlWriter, reconcile, row_key
from crawler.polite import Throttle, backoff_seconds, parse_retry_after
from crawler.robots import parse_robots
from crawler.site import Thivien
from crawler.state import CrawlState, StateLocked, StateMismatch
from crawler.text import clean, content_key, poem_stanzas
from training.corpus import read_rows

# -- text --------------------------------------------------------------------


def test_stanzas_from_paragraphs_and_blank_lines() -> None:
    html = "<p>Một<br>Hai<br></p>\n<p>Ba<br/>Bốn</p><br><br>Năm<br>\n<br>\nSáu"
    assert poem_stanzas(html) == [["Một", "Hai"], ["Ba", "Bốn"], ["Năm"], ["Sáu"]]


def test_stanzas_clean_markup_entities_whitespace_and_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Mưa rơi")
    html = f"<p><i>{nfd}</i>&nbsp;&nbsp; trên\u200b   phố,<br>Hỏi: &quot;Nhớ&quot; &amp; quên…<script>x()</script></p>"
    stanzas = poem_stanzas(html)
    assert stanzas == [["Mưa rơi trên phố,", 'Hỏi: "Nhớ" & quên…']]
    assert all(unicodedata.is_normalized("NFC", line) for line in stanzas[0])


def test_empty_poem_has_no_stanzas() -> None:
    assert poem_stanzas("  <p> </p><br><br>") == []
    assert clean(None) == ""


def test_content_key_ignores_case_and_spacing_only() -> None:
    assert content_key(["Chiều  về", "Khói bay"]) == content_key(["chiều về ", "KHÓI BAY"])
    assert content_key(["Chiều về", "Khói bay"]) != content_key(["Chiều về", "Khói bay."])


# -- site, robots, pacing ----------------------------------------------------


def test_listing_url_and_links() -> None:
    site = Thivien("http://127.0.0.1:1/")
    assert site.listing_url(2, 3) == "http://127.0.0.1:1/searchpoem.php?PoemType=2&ViewType=1&Country=2&Page=3"
    assert site.robots_url() == "http://127.0.0.1:1/robots.txt"
    assert (
        site.absolute("/A/poem-x#comments", "http://127.0.0.1:1/searchpoem.php?Page=1") == "http://127.0.0.1:1/A/poem-x"
    )


def test_robots_rules_and_crawl_delay() -> None:
    robots = parse_robots("User-agent: *\nDisallow: /private/\nCrawl-delay: 7\n", "ThoBotCrawler")
    assert robots.allowed("https://x/searchpoem.php?PoemType=2")
    assert not robots.allowed("https://x/private/poem-1")
    assert robots.crawl_delay() == 7.0
    assert not robots.unreachable


def test_retry_after_seconds_and_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(seconds=120)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(later, now=now) == pytest.approx(120.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_doubles_with_jitter_caps_and_honours_retry_after() -> None:
    rng = random.Random(0)
    waits = [backoff_seconds(n, 2.0, rng=rng) for n in range(4)]
    for n, wait in enumerate(waits):
        assert 2.0 * 2**n / 2 <= wait <= 2.0 * 2**n
    assert backoff_seconds(20, 2.0, cap=60, rng=rng) <= 60
    assert backoff_seconds(0, 1.0, retry_after=42, rng=rng) == 42


def test_throttle_spaces_requests_with_jitter() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(2.0, jitter=0.5, clock=lambda: now[0], sleep=sleep, rng=random.Random(1))
    throttle.wait()  # the first request goes at once
    now[0] += 0.5
    throttle.wait()
    assert slept and 1.5 <= slept[0] <= 2.5
    assert Throttle(0).wait() == 0.0


def test_cli_defaults() -> None:
    args = build_parser().parse_args(["thivien", "--type", "2", "--max-pages", "3", "--out", "x.jsonl"])
    assert (args.poem_type, args.max_pages, args.base_url) == (2, 3, "https://www.thivien.net")
    assert args.delay >= 1.0  # polite by default


# -- state and output --------------------------------------------------------


def _row(url: str, lines: list[str]) -> dict:
    return {
        "kind": "poem",
        "lines": lines,
        "stanzas": [lines],
        "genre": None,
        "genre_label": "2",
        "title": "t",
        "author": "a",
        "url": url,
        "source": "thivien.net",
    }


def test_state_records_listing_once_and_refuses_duplicate_content(tmp_path: Path) -> None:
    with CrawlState(tmp_path / "s.sqlite") as state:
        assert state.record_listing(2, 1, ["u1", "u2", "u1"]) == 2
        assert state.record_listing(2, 2, ["u2", "u3"]) == 1
        assert state.page(2, 1).links == 2
        assert state.poems_to_fetch() == ["u1", "u2", "u3"]
        state.mark_done("u1", "k")
        assert state.done_with_content("k") == "u1"
        with pytest.raises(sqlite3.IntegrityError):
            state.mark_done("u2", "k")
        state.mark_failed("u2", "boom")
        state.mark_skipped("u3", "HTTP 404")
        assert state.poems_to_fetch() == ["u2"]  # failed: retried on a later run
        for _ in range(2):
            state.mark_failed("u2", "boom")
        assert state.poems_to_fetch() == []  # ... but not for ever
        assert state.counts() == {"done": 1, "failed": 1, "skipped": 1, "pages_done": 2}


def test_state_is_locked_and_bound(tmp_path: Path) -> None:
    with CrawlState(tmp_path / "s.sqlite") as state:
        state.bind(base_url="http://a", poem_type="2")
        with pytest.raises(StateLocked):
            CrawlState(tmp_path / "s.sqlite")
    with CrawlState(tmp_path / "s.sqlite") as state:
        state.bind(base_url="http://a", poem_type="2")
        with pytest.raises(StateMismatch):
            state.bind(base_url="http://a", poem_type="3")


def test_reconcile_after_kill_between_write_and_mark_done(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with CrawlState(tmp_path / "s.sqlite") as state, JsonlWriter(out) as writer:
        state.record_listing(2, 1, ["u1", "u2", "u3"])
        writer.append(_row("u1", ["một"]))
        state.mark_done("u1", content_key(["một"]))
        writer.append(_row("u2", ["hai"]))  # killed here: written, not marked
    with CrawlState(tmp_path / "s.sqlite") as state:
        report = reconcile(out, state)
        assert (report.rows, report.adopted, report.reopened) == (2, 1, 0)
        assert state.done_urls() == {"u1", "u2"}
        assert state.poems_to_fetch() == ["u3"]
        assert state.done_with_content(row_key(_row("u2", ["hai"]))) == "u2"


def test_reconcile_cuts_partial_row_and_reopens_missing_rows(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with CrawlState(tmp_path / "s.sqlite") as state:
        state.record_listing(2, 1, ["u1", "u2", "u3"])
        with JsonlWriter(out) as writer:
            writer.append(_row("u1", ["một"]))
        state.mark_done("u1", content_key(["một"]))
        state.mark_done("u3", content_key(["ba"]))  # says done, but its row is gone
        with open(out, "ab") as f:  # killed in the middle of writing u2
            f.write(json.dumps(_row("u2", ["hai"])).encode()[:25])
        report = reconcile(out, state)
        assert report.truncated_bytes == 25 and report.reopened == 1
        assert state.poems_to_fetch() == ["u2", "u3"]
    assert [row["url"] for row in read_rows(out)] == ["u1"]
    assert out.read_bytes().endswith(b"\n")


def test_reconcile_drops_duplicate_rows(tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    with JsonlWriter(out) as writer:
        for row in (_row("u1", ["một"]), _row("u1", ["một"]), _row("u2", ["Một"]), _row("u3", ["ba"])):
            writer.append(row)
    with CrawlState(tmp_path / "s.sqlite") as state:
        report = reconcile(out, state)
        assert (report.rows, report.dropped) == (2, 2)
        assert state.done_urls() == {"u1", "u3"}
    assert [row["url"] for row in read_rows(out)] == ["u1", "u3"]


def test_unreachable_site_stops_politely_with_try_later_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from crawler.__main__ import main

    code = main(
        [
            "thivien",
            "--type",
            "2",
            "--out",
            str(tmp_path / "o.jsonl"),
            "--base-url",
            "http://127.0.0.1:9",
            "--no-progress",
        ]
    )
    assert code == 75  # robots.txt unreachable: no browser started, come back later
    assert "robots.txt unreachable" in capsys.readouterr().out


def test_polite_stop_waits_for_the_critical_section() -> None:
    import os
    import signal

    from crawler.signals import GracefulStop

    stop = GracefulStop()
    restore = stop.install()
    steps: list[str] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with stop.critical():
                os.kill(os.getpid(), signal.SIGTERM)
                steps.append("row written")
                steps.append("state updated")
        assert steps == ["row written", "state updated"]
    finally:
        restore()
