"""Crawler input (issue 12.9): the base URL, robots.txt wildcards and a dripping server, editorial notes."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import pytest

from crawler.robots import fetch_robots, parse_robots
from crawler.text import poem_stanzas


@pytest.mark.parametrize(
    "url",
    [
        "www.thivien.net",
        "file:///etc/passwd",
        "ftp://example.org",
        "http://",
        "thivien",
        "http://host:99999",
        "https://x.org/?a=1",
    ],
)
def test_bad_base_url_is_a_usage_error_not_a_traceback(tmp_path, url):
    done = subprocess.run(
        [sys.executable, "-m", "crawler", "thivien", "--type", "2", "--out", str(tmp_path / "o"), "--base-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "--base-url" in done.stderr
    assert not (tmp_path / "o").exists()


def test_robots_wildcards_and_longest_match():
    robots = parse_robots(
        "User-agent: *\nDisallow: /*.php\nAllow: /searchpoem.php\nDisallow: /tmp$\nDisallow: /a/*/b\n", "ThoBotCrawler"
    )
    assert not robots.allowed("https://x/poem.php?id=1")
    assert not robots.allowed("https://x/dir/author.php")
    assert robots.allowed("https://x/searchpoem.php?PoemType=2")  # the longer Allow wins
    assert not robots.allowed("https://x/tmp") and robots.allowed("https://x/tmp/ok")
    assert not robots.allowed("https://x/a/c/d/b") and robots.allowed("https://x/a/b")
    assert robots.allowed("https://x/poem-abc") and robots.allowed("https://x/robots.txt")


def test_robots_group_for_our_agent_wins_over_star():
    text = (
        "User-agent: *\nDisallow: /\n\nUser-agent: OtherBot\nUser-agent: thobotcrawler\nDisallow: /private\n"
        "Crawl-delay: 4\n"
    )
    robots = parse_robots(text, "ThoBotCrawler")
    assert robots.allowed("https://x/poem-1") and not robots.allowed("https://x/private/1")
    assert robots.crawl_delay() == 4.0
    assert not parse_robots(text, "SomeoneElse").allowed("https://x/poem-1")


def test_robots_from_a_server_that_drips_bytes_times_out_in_total():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    stop = threading.Event()

    def drip() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
            while not stop.is_set():  # one byte every 0.2 s: each read is "fast", the whole never ends
                try:
                    conn.sendall(b"#")
                except OSError:
                    return
                time.sleep(0.2)

    threading.Thread(target=drip, daemon=True).start()
    started = time.monotonic()
    try:
        robots = fetch_robots(f"http://127.0.0.1:{port}/robots.txt", user_agent="t", agent="t", timeout=1.5)
    finally:
        stop.set()
        server.close()
    assert time.monotonic() - started < 5
    assert robots.unreachable and not robots.allowed(f"http://127.0.0.1:{port}/poem-1")


def test_editorial_notes_in_the_poem_block_are_not_lines():
    html = (
        "Trăm năm trong cõi người ta<br>Chữ tài chữ mệnh khéo là ghét nhau<br><i>(Trích)</i><br><br>"
        "Trải qua một cuộc bể dâu<sup>1</sup><br>Những điều trông thấy mà đau đớn lòng<br>"
        "<div class='poem-source'><div>Nguồn</div>: Truyện Kiều, 1820</div>"
        "<p><i>Nguồn: Nhà xuất bản Văn học, 1990</i></p><p>[1] Bể dâu: biển hoá nương dâu</p>"
    )
    assert poem_stanzas(html) == [
        ["Trăm năm trong cõi người ta", "Chữ tài chữ mệnh khéo là ghét nhau"],
        ["Trải qua một cuộc bể dâu", "Những điều trông thấy mà đau đớn lòng"],
    ]
    # Italic poem lines themselves stay: only notes go.
    assert poem_stanzas("<i>Mùa thu lá vàng rơi</i><br><em>Gió heo may về qua</em>") == [
        ["Mùa thu lá vàng rơi", "Gió heo may về qua"]
    ]
