"""Headless Chromium through Selenium, with the HTTP status of each page.

Selenium does not expose HTTP status codes, yet a polite crawler must tell a
404 from a 429 from a 503. Two ways were weighed:

1. probe every URL with urllib (HEAD or GET) before loading it in the browser:
   two requests per page, a HEAD the site may answer differently from the GET,
   and a race (the probe gets 200, the browser a moment later gets 429);
2. read the status of the very response the browser rendered from Chrome's
   DevTools *performance log* (``goog:loggingPrefs``): one request per page,
   and its headers come along, so Retry-After can be honoured.

We use (2): the log is drained before each navigation, and the main document's
``Network.responseReceived`` event is picked out (type ``Document``, a
navigation request: requestId == loaderId, preferring the URL the browser
ended on). Only when no such event is found (a driver without the log) do we
fall back to one urllib HEAD request.

Chromium runs with a throwaway profile and with background networking,
component updates and sync switched off, so the only requests it makes are
the pages we ask for (and their subresources; images are not loaded).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

log = logging.getLogger(__name__)

CHROMIUM_BINARY = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEFAULT_PAGE_TIMEOUT_S = 60.0
HEAD_TIMEOUT_S = 30.0
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--blink-settings=imagesEnabled=false",
    "--window-size=1280,1024",
)


@dataclass
class PageLoad:
    """What came back for one URL."""

    url: str
    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers.items():
            if key.lower() == name:
                return value
        return None


class Browser:
    """One Chromium for the whole crawl: start it, load pages, read elements."""

    def __init__(
        self,
        *,
        user_agent: str,
        page_timeout: float = DEFAULT_PAGE_TIMEOUT_S,
        binary: str = CHROMIUM_BINARY,
        driver_path: str = CHROMEDRIVER,
    ) -> None:
        self.user_agent = user_agent
        self._profile = tempfile.mkdtemp(prefix="crawler-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self._profile}")
        options.add_argument(f"--user-agent={user_agent}")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
        try:
            # An explicit driver path: Selenium Manager never downloads anything.
            self.driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        except Exception:
            shutil.rmtree(self._profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(page_timeout)

    def close(self) -> None:
        try:
            self.driver.quit()
        except Exception as err:  # noqa: BLE001 - Ctrl-C may have killed Chromium already
            log.debug("closing the browser: %s", err)
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loading -------------------------------------------------------------

    def load(self, url: str) -> PageLoad:
        """Navigate to ``url`` and report the main document's HTTP status."""
        self._drain_log()
        try:
            self.driver.get(url)
        except TimeoutException:
            self._stop_loading()
            return PageLoad(url, None, error="page load timed out")
        except WebDriverException as err:
            if "net::ERR_" not in (err.msg or ""):
                raise  # the browser itself is broken: let the crawl stop
            return PageLoad(url, None, error=(err.msg or "").splitlines()[0])
        found = self._document_response(url)
        if found is not None:
            return found
        log.debug("no performance-log status for %s; probing with HEAD", url)
        return head_status(url, self.user_agent)

    def _drain_log(self) -> list[dict]:
        messages = []
        try:
            entries = self.driver.get_log("performance")
        except WebDriverException:
            return []
        for entry in entries:
            try:
                messages.append(json.loads(entry["message"])["message"])
            except (KeyError, ValueError, TypeError):
                continue
        return messages

    def _document_response(self, url: str) -> PageLoad | None:
        current = self.driver.current_url
        candidates: list[PageLoad] = []
        for message in self._drain_log():
            if message.get("method") != "Network.responseReceived":
                continue
            params = message.get("params", {})
            if params.get("type") != "Document" or params.get("requestId") != params.get("loaderId"):
                continue
            response = params.get("response", {})
            load = PageLoad(response.get("url", url), response.get("status"), response.get("headers", {}))
            if load.url in (current, url):
                return load
            candidates.append(load)
        return candidates[0] if candidates else None

    def _stop_loading(self) -> None:
        try:
            self.driver.execute_script("window.stop();")
        except WebDriverException:
            pass

    # -- reading -------------------------------------------------------------

    @property
    def current_url(self) -> str:
        return self.driver.current_url

    def first(self, selectors: tuple[str, ...]):
        """The first element matching any selector, in selector order."""
        for selector in selectors:
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            if found:
                return found[0]
        return None

    def all(self, selectors: tuple[str, ...]) -> list:
        """All elements matching the first selector that matches anything."""
        for selector in selectors:
            found = self.driver.find_elements(By.CSS_SELECTOR, selector)
            if found:
                return found
        return []

    @staticmethod
    def first_in(element, selectors: tuple[str, ...]):
        for selector in selectors:
            found = element.find_elements(By.CSS_SELECTOR, selector)
            if found:
                return found[0]
        return None


def head_status(url: str, user_agent: str, timeout: float = HEAD_TIMEOUT_S) -> PageLoad:
    """Fallback status check: one HEAD request with urllib."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return PageLoad(response.geturl(), response.status, dict(response.headers))
    except urllib.error.HTTPError as err:
        return PageLoad(url, err.code, dict(err.headers or {}))
    except (urllib.error.URLError, OSError) as err:
        return PageLoad(url, None, error=str(err))
