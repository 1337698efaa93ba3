"""robots.txt: fetched once per run over plain HTTP, with our user agent.

We parse and match the rules ourselves, as RFC 9309 (and Google) do:
:class:`urllib.robotparser.RobotFileParser` ignores the ``*`` and ``$``
wildcards (``Disallow: /*.php`` would allow everything) and lets the first
rule win instead of the longest. Matching: the group for our agent token (or
``*``); of the rules that match a URL's path and query, the longest wins, and
Allow wins a tie.

Fetching follows the usual conventions:

- 2xx: obey the rules;
- 401/403: everything is forbidden;
- other 4xx (no robots.txt): everything is allowed;
- 5xx, no answer, or no complete answer within ``timeout`` seconds in all
  (a server that drips a byte at a time counts): everything is forbidden for
  this run (the site is unwell, crawling it now would not be polite); the
  crawl stops and can be resumed.
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

ROBOTS_TIMEOUT_S = 30.0
#: robots.txt larger than this is cut (Google reads the first 500 KiB).
MAX_ROBOTS_BYTES = 512 * 1024


@dataclass(frozen=True)
class Rule:
    allow: bool
    pattern: str  # as written: "/private/", "/*.php$"
    regex: re.Pattern

    @classmethod
    def of(cls, allow: bool, pattern: str) -> Rule:
        anchored = pattern.endswith("$")
        body = pattern[:-1] if anchored else pattern
        regex = ".*".join(re.escape(_normalise(part)) for part in body.split("*"))
        return cls(allow, pattern, re.compile(regex + ("$" if anchored else ""), re.DOTALL))


def _normalise(path: str) -> str:
    """Compare paths decoded ("%7E" and "~" are the same), except an encoded slash."""
    return unquote(path.replace("%2F", "%252F").replace("%2f", "%252f"))


@dataclass
class Robots:
    """The rules for one site, for one user agent token."""

    agent: str
    status: int | None
    rules: list[Rule] = field(default_factory=list)
    delay: float | None = None
    disallow_all: bool = False

    def allowed(self, url: str) -> bool:
        if self.disallow_all:
            return False
        parts = urlsplit(url)
        path = _normalise((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        if path == "/robots.txt":
            return True
        best: Rule | None = None
        for rule in self.rules:
            if rule.pattern and rule.regex.match(path):
                longer = best is None or len(rule.pattern) > len(best.pattern)
                if longer or (len(rule.pattern) == len(best.pattern) and rule.allow):
                    best = rule
        return best is None or best.allow

    @property
    def unreachable(self) -> bool:
        """True when robots.txt could not be read at all (5xx, network error, too slow)."""
        return self.status is None or self.status >= 500

    def crawl_delay(self) -> float | None:
        """The site's Crawl-delay for us, in seconds, if it sets one."""
        return self.delay


def parse_robots(text: str, agent: str, status: int | None = 200) -> Robots:
    """Rules from robots.txt text for ``agent`` (separate from fetching, for tests)."""
    groups: list[tuple[list[str], list[Rule], list[float]]] = []
    in_agents = False  # consecutive User-agent lines share one group
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if not in_agents:
                groups.append(([], [], []))
            groups[-1][0].append(value.lower())
            in_agents = True
            continue
        in_agents = False
        if not groups:
            continue  # rules before any User-agent line belong to nobody
        if key in ("allow", "disallow"):
            groups[-1][1].append(Rule.of(key == "allow", value))
        elif key == "crawl-delay":
            try:
                groups[-1][2].append(float(value))
            except ValueError:
                pass
    token = agent.lower()
    mine = [g for g in groups if any(a != "*" and a in token for a in g[0])]
    chosen = mine or [g for g in groups if "*" in g[0]]
    rules = [rule for g in chosen for rule in g[1]]
    delays = [d for g in chosen for d in g[2]]
    return Robots(agent, status, rules, delays[0] if delays else None)


def fetch_robots(url: str, *, user_agent: str, agent: str, timeout: float = ROBOTS_TIMEOUT_S) -> Robots:
    """Fetch and parse ``url`` (the site's /robots.txt), ``timeout`` seconds in all."""
    result: dict = {}

    def fetch() -> None:
        request = urllib.request.Request(url, headers={"User-Agent": user_agent})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                result["body"] = response.read(MAX_ROBOTS_BYTES)
                result["status"] = response.status
        except BaseException as err:  # handed to the caller's thread below
            result["error"] = err

    # The socket timeout bounds each read, not the whole answer: a server that sends a byte every
    # few seconds would hold us forever. A daemon thread keeps the deadline; a crawl whose robots.txt
    # did not come stops, so an abandoned thread lives only until the process ends.
    worker = threading.Thread(target=fetch, name="robots.txt", daemon=True)
    worker.start()
    worker.join(timeout)
    err = result.get("error")
    if worker.is_alive():
        err = TimeoutError(f"no complete answer within {timeout:g} s")
    if isinstance(err, urllib.error.HTTPError):
        robots = Robots(agent, err.code)
        if err.code in (401, 403) or err.code >= 500:
            robots.disallow_all = True
        log.info("robots.txt: HTTP %s at %s", err.code, url)
        return robots
    if err is not None:
        log.warning("robots.txt unreachable at %s: %s; treating the site as closed", url, err)
        return Robots(agent, None, disallow_all=True)
    return parse_robots(result["body"].decode("utf-8", errors="replace"), agent, result["status"])
