"""Polite, resumable crawler that grows the poem corpus from thivien.net.

Run it as ``python -m crawler thivien --type <n> --max-pages N --out FILE.jsonl``.
The pieces, one job each:

- :mod:`crawler.site`      -- the site's URLs and CSS selectors, in one place;
- :mod:`crawler.text`      -- poem HTML to clean, NFC-normalised lines and stanzas;
- :mod:`crawler.robots`    -- robots.txt, fetched over HTTP with our user agent;
- :mod:`crawler.polite`    -- delay with jitter, exponential back-off, Retry-After;
- :mod:`crawler.browser`   -- headless Chromium via Selenium, with the HTTP status
  of every page read from Chrome's DevTools performance log;
- :mod:`crawler.extract`   -- poem links from a listing, a corpus row from a poem page;
- :mod:`crawler.state`     -- the SQLite crawl state that makes a run resumable;
- :mod:`crawler.output`    -- crash-safe JSONL writing and reconciliation on start;
- :mod:`crawler.crawl`     -- the crawl loop, progress bar and summary;
- :mod:`crawler.signals`   -- Ctrl-C / SIGTERM that wait for a row to be recorded;
- :mod:`crawler.__main__`  -- the command line.

Rows follow the corpus schema that :func:`training.corpus.read_rows` reads.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Sent with every request (robots.txt and the browser). Descriptive, so a site
#: owner who sees it in the logs knows what it is and why it is there.
USER_AGENT = (
    f"ThoBotCrawler/{__version__} (+Vietnamese poem corpus for the Tho bot course project; "
    "one request at a time, honours robots.txt)"
)

#: The token robots.txt rules are matched against (the product name above).
ROBOTS_AGENT = "ThoBotCrawler"
