"""Fixture web server that reproduces thivien.net's structure, and its moods.

``/searchpoem.php?PoemType=2&...&Page=<p>`` serves ``pages/listing-<p>.html``
(pages 1-3; later pages are empty, which ends the results); a poem URL
``/<Author>/poem-<slug>`` serves ``pages/poem-<slug>.html``. On top of that,
the behaviours the crawler must cope with, one URL each:

- ``poem-da-xoa``    404 (listed, but no such page);
- ``poem-cham-cham`` answers after ``slow_seconds``;
- ``poem-hong``      malformed HTML without a poem;
- ``/private/...``   exists, but robots.txt forbids it;
- ``poem-nghi-chut`` 429 with ``Retry-After: 1`` on the first request, then 200;
- ``poem-tro-lai``   503 on the first request, then 200.

Every request is logged (path, user agent, status, time) so tests can check
what the crawler asked for, and what it never asked for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
POEM_TYPE = "2"
LAST_LISTING_PAGE = 3
SLOW_SLUG = "poem-cham-cham"
RATE_LIMITED_SLUG = "poem-nghi-chut"
FLAKY_SLUG = "poem-tro-lai"
RETRY_AFTER_S = 1


@dataclass(frozen=True)
class Hit:
    path: str
    query: str
    user_agent: str
    status: int
    at: float


class FixtureSite:
    """Start with :meth:`start` (returns the base URL), stop with :meth:`stop`."""

    def __init__(self, *, slow_seconds: float = 1.0) -> None:
        self.slow_seconds = slow_seconds
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> str:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                site._handle(self, head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                site._handle(self, head=True)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FixtureSite:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries for tests ---------------------------------------------------

    def requests_for(self, fragment: str) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.hits if fragment in hit.path]

    # -- serving -------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, *, head: bool) -> None:
        parts = urlsplit(handler.path)
        path = unquote(parts.path)
        status, body, headers = self._route(path, parse_qs(parts.query))
        with self._lock:
            self.hits.append(Hit(path, parts.query, handler.headers.get("User-Agent", ""), status, time.time()))
        data = body.encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", headers.pop("Content-Type", "text/html; charset=utf-8"))
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if not head:
            handler.wfile.write(data)

    def _count(self, key: str) -> int:
        with self._lock:
            self._served[key] = self._served.get(key, 0) + 1
            return self._served[key]

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, dict[str, str]]:
        if path == "/robots.txt":
            return 200, (HERE / "robots.txt").read_text(encoding="utf-8"), {"Content-Type": "text/plain; charset=utf-8"}
        if path == "/style.css":
            return 200, ".poem-content { white-space: normal; }\n", {"Content-Type": "text/css"}
        if path == "/searchpoem.php":
            page = int(query.get("Page", ["1"])[0])
            name = (
                f"listing-{page}.html"
                if query.get("PoemType") == [POEM_TYPE] and 1 <= page <= LAST_LISTING_PAGE
                else "listing-empty.html"
            )
            return 200, (PAGES / name).read_text(encoding="utf-8"), {}
        slug = path.rstrip("/").rsplit("/", 1)[-1]
        if slug == SLOW_SLUG:
            time.sleep(self.slow_seconds)
        if slug == RATE_LIMITED_SLUG and self._count(slug) == 1:
            return 429, "<h1>Too Many Requests</h1>", {"Retry-After": str(RETRY_AFTER_S)}
        if slug == FLAKY_SLUG and self._count(slug) == 1:
            return 503, "<h1>Service Unavailable</h1>", {}
        file = PAGES / "private" / f"{slug}.html" if path.startswith("/private/") else PAGES / f"{slug}.html"
        if slug.startswith("poem-") and file.is_file():
            return 200, file.read_text(encoding="utf-8"), {}
        return 404, "<h1>Không tìm thấy</h1>", {}
