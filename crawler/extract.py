"""Read a loaded page: poem links from a listing, a corpus row from a poem.

Selectors come from :mod:`crawler.site`; text cleaning from :mod:`crawler.text`.
Text is read through ``textContent`` (not Selenium's ``.text``, which depends
on layout and visibility) and the poem through its ``innerHTML``, so that
``<br>`` and ``<p>`` survive to tell lines from stanzas.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .browser import Browser
from .site import SOURCE, Thivien
from .text import clean, poem_stanzas


class Malformed(ValueError):
    """The page loaded but does not hold what a poem page should."""


def listing_links(browser: Browser, site: Thivien) -> list[str]:
    """Poem URLs on the loaded listing page, in page order, without repeats.

    Links to other hosts are ignored: the crawl never leaves the site.
    """
    host = urlsplit(site.base_url).netloc
    page_url = browser.current_url
    links: list[str] = []
    for item in browser.all(site.selectors.listing_item):
        anchor = Browser.first_in(item, site.selectors.listing_link)
        href = anchor.get_attribute("href") if anchor is not None else None
        if not href:
            continue
        url = site.absolute(href, page_url)
        if urlsplit(url).netloc == host and url not in links:
            links.append(url)
    return links


def _text(browser: Browser, selectors: tuple[str, ...]) -> str:
    element = browser.first(selectors)
    return clean(element.get_attribute("textContent")) if element is not None else ""


def poem_row(browser: Browser, site: Thivien, url: str, poem_type: int) -> dict:
    """The corpus row for the loaded poem page; :class:`Malformed` if there is none."""
    sel = site.selectors
    title = _text(browser, sel.title)
    content = browser.first(sel.poem_content)
    if content is None:
        raise Malformed("no poem content element")
    stanzas = poem_stanzas(content.get_attribute("innerHTML") or "")
    if not stanzas:
        raise Malformed("poem content is empty")
    if not title:
        raise Malformed("no title")
    label = _text(browser, tuple(s.format(type=poem_type) for s in sel.poem_type))
    return {
        "kind": "poem",
        "lines": [line for stanza in stanzas for line in stanza],
        "stanzas": stanzas,
        "genre": None,
        "genre_label": label or str(poem_type),
        "title": title,
        "author": _text(browser, sel.author) or None,
        "url": url,
        "source": SOURCE,
    }
