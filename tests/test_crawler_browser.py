"""The crawler with a real headless Chromium against the fixture site.

One full crawl (a subprocess, ``python -m crawler ...``) is shared by most
tests of this module; each test checks one thing the issue asks for.
"""

from __future__ import annotations

import sqlite3
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.crawler_site import harness, server
from training.corpus import read_rows

pytestmark = pytest.mark.slow


EXPECTED_SLUGS = harness.EXPECTED_SLUGS


@dataclass
class Crawled:
    site: object
    out: Path
    state: Path
    result: subprocess.CompletedProcess
    rows: list[dict]

    def row(self, slug: str) -> dict:
        return next(row for row in self.rows if row["url"].endswith("/" + slug))


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("crawl")
    out = tmp / "poems.jsonl"
    with server.FixtureSite(slow_seconds=1.0) as site:
        result = harness.crawl(site.base_url, out)
        assert result.returncode == 0, result.stdout + result.stderr
        yield Crawled(site, out, Path(f"{out}.state.sqlite"), result, list(read_rows(out)))


def _slug(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_output_loads_with_training_reader_in_corpus_schema(crawled: Crawled) -> None:
    assert sorted(_slug(row["url"]) for row in crawled.rows) == sorted(EXPECTED_SLUGS)
    for row in crawled.rows:
        assert set(row) == {"kind", "lines", "stanzas", "genre", "genre_label", "title", "author", "url", "source"}
        assert row["kind"] == "poem" and row["source"] == "thivien.net" and row["genre"] is None
        assert row["lines"] == [line for stanza in row["stanzas"] for line in stanza]
        assert all(line and line == " ".join(line.split()) for line in row["lines"])
        assert all(unicodedata.is_normalized("NFC", line) for line in row["lines"])
        assert "<" not in "".join(row["lines"]) + row["title"]


def test_title_author_type_stanzas_and_punctuation(crawled: Crawled) -> None:
    row = crawled.row("poem-chieu-que")
    assert (row["title"], row["author"], row["genre_label"]) == ("Chiều quê", "Lê Văn An", "Năm chữ")
    assert [len(s) for s in row["stanzas"]] == [4, 4]
    assert row["stanzas"][1][2:] == ["Tiếng ai gọi đàn sáo —", "Vọng mãi tận đâu đâu!"]
    # <br><br> stanza break, entities, inline <i>, NBSP runs, decomposed (NFD) source text
    row = crawled.row("poem-mua-dem")
    assert row["title"] == "Mưa đêm & phố"
    assert row["stanzas"] == [
        ["Mưa rơi trên mái phố,", "Đèn vàng soi góc nhỏ.", "Ai về qua ngõ cũ?", 'Hỏi: "Em có nhớ không?"'],
        ["Đêm dài… mưa vẫn đổ;", "Lòng ta lạnh mùa đông!"],
    ]
    # no type link on the page: the --type number stands in
    assert crawled.row("poem-dong-song")["genre_label"] == "2"


def test_pagination_followed_to_the_empty_page(crawled: Crawled) -> None:
    pages = [hit.query for hit in crawled.site.requests_for("/searchpoem.php")]
    assert [q.rsplit("Page=", 1)[1] for q in pages] == ["1", "2", "3", "4"]
    assert "listing pages: 4" in crawled.result.stdout
    assert "stopped:       end of results" in crawled.result.stdout


def test_404_is_skipped_and_malformed_page_is_a_failure(crawled: Crawled) -> None:
    assert [hit.status for hit in crawled.site.requests_for("poem-da-xoa")] == [404]
    assert len(crawled.site.requests_for("poem-hong")) == 1
    with sqlite3.connect(crawled.state) as db:
        status = dict(db.execute("SELECT url, status || ': ' || COALESCE(last_error, '') FROM poems").fetchall())
    by_slug = {_slug(url): value for url, value in status.items()}
    assert by_slug["poem-da-xoa"] == "skipped: HTTP 404"
    assert by_slug["poem-hong"].startswith("failed: malformed page")
    assert by_slug["poem-chieu-que-dang-lai"].startswith("skipped: same poem as")
    assert "poem-quang-cao" not in by_slug  # off-site link ignored
    assert "failures:      1" in crawled.result.stdout


def test_robots_forbidden_path_is_never_requested(crawled: Crawled) -> None:
    assert crawled.site.requests_for("/robots.txt")
    assert crawled.site.requests_for("/private/") == []
    assert "forbidden by robots.txt" in crawled.result.stdout


def test_429_waits_retry_after_then_succeeds_and_5xx_is_retried(crawled: Crawled) -> None:
    hits = crawled.site.requests_for("poem-nghi-chut")
    assert [hit.status for hit in hits] == [429, 200]
    assert hits[1].at - hits[0].at >= server.RETRY_AFTER_S - 0.05
    assert [hit.status for hit in crawled.site.requests_for("poem-tro-lai")] == [503, 200]
    assert crawled.row("poem-nghi-chut")["lines"][0] == "Máy chủ bảo: nghỉ chút!"


def test_slow_page_is_waited_for(crawled: Crawled) -> None:
    assert crawled.row("poem-cham-cham")["title"] == "Chầm chậm"


def test_no_duplicates_by_url_or_content_and_a_descriptive_user_agent(crawled: Crawled) -> None:
    urls = [row["url"] for row in crawled.rows]
    assert len(urls) == len(set(urls))
    assert len({tuple(row["lines"]) for row in crawled.rows}) == len(crawled.rows)
    assert len(crawled.site.requests_for("/Le-Van-An/poem-chieu-que")) == 1  # listed twice, fetched once
    agents = {hit.user_agent for hit in crawled.site.hits}
    assert len(agents) == 1 and agents.pop().startswith("ThoBotCrawler/")
    assert "skipped:       3" in crawled.result.stdout


def test_rerun_of_a_finished_crawl_adds_nothing(crawled: Crawled) -> None:
    before = crawled.out.read_bytes()
    poem_hits = len([h for h in crawled.site.hits if "/poem-" in h.path])
    result = harness.crawl(crawled.site.base_url, crawled.out)
    assert result.returncode == 0, result.stderr
    assert crawled.out.read_bytes() == before
    # only the malformed page is tried again (a failure gets MAX_ATTEMPTS runs)
    new_hits = [h.path for h in crawled.site.hits if "/poem-" in h.path][poem_hits:]
    assert new_hits == ["/Hong/poem-hong"]


def test_limits_then_extending_the_crawl(tmp_path: Path) -> None:
    out = tmp_path / "poems.jsonl"
    with server.FixtureSite(slow_seconds=0.2) as site:
        first = harness.crawl(site.base_url, out, "--max-pages", "1")
        assert first.returncode == 0, first.stderr
        assert {_slug(r["url"]) for r in read_rows(out)} == {"poem-chieu-que", "poem-mua-dem", "poem-cham-cham"}
        assert "stopped:       max pages (1)" in first.stdout
        second = harness.crawl(site.base_url, out, "--max-poems", "5")
        assert second.returncode == 0, second.stderr
        assert len(list(read_rows(out))) == 5
        assert "stopped:       max poems (5)" in second.stdout
        pages = [hit.query for hit in site.requests_for("/searchpoem.php")]
        assert [q.rsplit("Page=", 1)[1] for q in pages] == ["1", "2"]  # page 1 not fetched again


def test_browser_reads_http_status_and_times_out(tmp_path: Path) -> None:
    from crawler import USER_AGENT
    from crawler.browser import Browser

    with server.FixtureSite(slow_seconds=3.0) as site, Browser(user_agent=USER_AGENT, page_timeout=1.0) as browser:
        ok = browser.load(f"{site.base_url}/A/poem-hoa-sen")
        assert ok.status == 200
        missing = browser.load(f"{site.base_url}/A/poem-da-xoa")
        assert missing.status == 404
        limited = browser.load(f"{site.base_url}/A/poem-nghi-chut")
        assert (limited.status, limited.header("retry-after")) == (429, "1")
        slow = browser.load(f"{site.base_url}/A/poem-cham-cham")
        assert slow.status is None and "timed out" in (slow.error or "")


def test_sigterm_stops_cleanly_with_a_summary(tmp_path: Path) -> None:
    import signal

    out, log = tmp_path / "poems.jsonl", tmp_path / "crawl.log"
    with server.FixtureSite(slow_seconds=0.2) as site:
        proc = harness.start_crawl(site.base_url, out, log, delay="0.1")
        try:
            harness.wait_for_rows(proc, out, 1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 130, log.read_text()
        finally:
            harness.kill_hard(proc)
    text = log.read_text()
    assert "stopped:       interrupted" in text
    assert f"output now holds {harness.count_rows(out)}" in text
