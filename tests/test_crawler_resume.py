"""Kill the crawler mid-run, start it again: same poems as an uninterrupted crawl, none twice.

Two interruptions, then a run to the end:

1. the crawler dies by itself right after a row is fsynced and before the state
   records it -- the one moment where the output and the state disagree;
2. ``kill -9`` from outside (the whole process group: Python, chromedriver and
   Chromium) at whatever moment the output has grown by a few rows;
3. a plain run finishes the crawl.

The result is compared with an uninterrupted crawl of an identical site.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.crawler_site import harness, server
from training.corpus import read_rows

pytestmark = pytest.mark.slow


#: Slower than the other tests so the kill lands mid-crawl, fast enough to keep the test short.
DELAY = "0.15"


def test_killed_twice_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    reference = tmp_path / "reference.jsonl"
    with server.FixtureSite(slow_seconds=0.3) as site:
        done = harness.crawl(site.base_url, reference, delay=DELAY)
        assert done.returncode == 0, done.stdout + done.stderr
    expected = harness.rows_by_path(reference)
    assert {key.rsplit("/", 1)[1] for key in expected} == harness.EXPECTED_SLUGS

    out, log = tmp_path / "resumed.jsonl", tmp_path / "resumed.log"
    total = len(expected)
    with server.FixtureSite(slow_seconds=0.3) as site:
        # 1. dies between "row fsynced" and "state says done"
        proc = harness.start_crawl(site.base_url, out, log, delay=DELAY, crash_after_write=2)
        assert proc.wait(timeout=120) == 137, log.read_text()
        harness.kill_hard(proc)  # its orphaned Chromium
        assert harness.count_rows(out) == 2

        # 2. kill -9 at a moment of the test's choosing, some rows later
        proc = harness.start_crawl(site.base_url, out, log, delay=DELAY)
        rows = harness.wait_for_rows(proc, out, 5)
        still_running = proc.poll() is None
        harness.kill_hard(proc)
        assert still_running and rows < total, f"crawl ended before the kill ({rows} rows)\n{log.read_text()}"
        assert "1 rows adopted" in log.read_text()  # the row of step 1 was kept, not refetched

        # 3. run to the end
        final = harness.crawl(site.base_url, out, delay=DELAY)
        assert final.returncode == 0, final.stdout + final.stderr
        assert f"output now holds {total}" in final.stdout

        fetched = [hit.path.rsplit("/", 1)[1] for hit in site.hits if hit.status == 200 and "/poem-" in hit.path]
    resumed = harness.rows_by_path(out)  # asserts no URL twice
    assert resumed == expected
    assert len({tuple(row["lines"]) for row in resumed.values()}) == total
    assert len(list(read_rows(out))) == total
    # the two rows written before the first crash were never fetched again
    first_two = [key.rsplit("/", 1)[1] for key in list(resumed)[:2]]
    assert all(fetched.count(slug) == 1 for slug in first_two), fetched
