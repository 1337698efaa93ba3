"""Where things are on thivien.net: URLs and CSS selectors, and nothing else.

Sites change their markup; when thivien.net does, this is the only file to
edit. Every selector is a tuple tried in order, so a new layout can be added in
front of the old one without breaking crawls of mirrors or archived copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

DEFAULT_BASE_URL = "https://www.thivien.net"
SOURCE = "thivien.net"


@dataclass(frozen=True)
class Selectors:
    """CSS selectors for listing and poem pages (first match wins)."""

    #: One search result on a listing page.
    listing_item: tuple[str, ...] = ("div.list-item",)
    #: The link to the poem page inside one result.
    listing_link: tuple[str, ...] = ("a[href*='poem-']", "h4 a", "a")
    #: The poem's title.
    title: tuple[str, ...] = (".page-header h1",)
    #: The author's name, linked near the title.
    author: tuple[str, ...] = (
        ".page-header a[href*='author']",
        ".page-header a",
        "a[href*='author-']",
    )
    #: The poem's type ("Năm chữ"): a link back to the search for this type;
    #: ``{type}`` is replaced by the PoemType number being crawled.
    poem_type: tuple[str, ...] = ("a[href*='PoemType={type}&']", "a[href$='PoemType={type}']")
    #: The poem itself: <br> ends a line, <p> (or a blank line) ends a stanza.
    poem_content: tuple[str, ...] = ("div.poem-content",)


@dataclass(frozen=True)
class Thivien:
    """URL builder for one thivien.net base URL (the real site or a fixture)."""

    base_url: str = DEFAULT_BASE_URL
    selectors: Selectors = Selectors()

    def listing_url(self, poem_type: int, page: int) -> str:
        """The search listing of one poem type, page ``page`` (1-based)."""
        query = urlencode({"PoemType": poem_type, "ViewType": 1, "Country": 2, "Page": page})
        return f"{self.base_url.rstrip('/')}/searchpoem.php?{query}"

    def robots_url(self) -> str:
        return urljoin(self.base_url.rstrip("/") + "/", "robots.txt")

    def absolute(self, href: str, page_url: str) -> str:
        """Resolve a link found on ``page_url``; drop the #fragment (same poem)."""
        return urljoin(page_url, href).split("#", 1)[0]
