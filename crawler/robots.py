"""robots.txt: fetched once per run over plain HTTP, with our user agent.

:class:`urllib.robotparser.RobotFileParser` parses the rules, but its own
``read()`` sends Python's default user agent, which some sites block, so we
fetch the file ourselves and follow the same conventions (and Google's):

- 2xx: obey the rules;
- 401/403: everything is forbidden;
- other 4xx (no robots.txt): everything is allowed;
- 5xx or no answer: everything is forbidden for this run (the site is unwell,
  crawling it now would not be polite); the crawl stops and can be resumed.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.robotparser import RobotFileParser

log = logging.getLogger(__name__)

ROBOTS_TIMEOUT_S = 30.0
#: robots.txt larger than this is cut (Google reads the first 500 KiB).
MAX_ROBOTS_BYTES = 512 * 1024


@dataclass
class Robots:
    """The rules for one site, for one user agent token."""

    parser: RobotFileParser
    agent: str
    status: int | None

    def allowed(self, url: str) -> bool:
        return self.parser.can_fetch(self.agent, url)

    @property
    def unreachable(self) -> bool:
        """True when robots.txt could not be read at all (5xx or network error)."""
        return self.status is None or self.status >= 500

    def crawl_delay(self) -> float | None:
        """The site's Crawl-delay for us, in seconds, if it sets one."""
        delay = self.parser.crawl_delay(self.agent)
        return float(delay) if delay is not None else None


def parse_robots(text: str, agent: str, status: int | None = 200) -> Robots:
    """Rules from robots.txt text (separate from fetching, for tests)."""
    parser = RobotFileParser()
    parser.parse(text.splitlines())
    return Robots(parser, agent, status)


def fetch_robots(url: str, *, user_agent: str, agent: str, timeout: float = ROBOTS_TIMEOUT_S) -> Robots:
    """Fetch and parse ``url`` (the site's /robots.txt)."""
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_ROBOTS_BYTES)
            status = response.status
    except urllib.error.HTTPError as err:
        robots = Robots(RobotFileParser(), agent, err.code)
        if err.code in (401, 403) or err.code >= 500:
            robots.parser.disallow_all = True
        else:
            robots.parser.allow_all = True
        log.info("robots.txt: HTTP %s at %s", err.code, url)
        return robots
    except (urllib.error.URLError, OSError) as err:
        log.warning("robots.txt unreachable at %s: %s; treating the site as closed", url, err)
        robots = Robots(RobotFileParser(), agent, None)
        robots.parser.disallow_all = True
        return robots
    return parse_robots(body.decode("utf-8", errors="replace"), agent, status)
