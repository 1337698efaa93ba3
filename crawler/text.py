"""From a poem's HTML to clean lines and stanzas, and a key for duplicates.

The poem sits in one element with ``<br>`` at the end of each line and ``<p>``
(or a blank line, ``<br><br>``) between stanzas. We parse the element's
serialised HTML with the standard library rather than reading Selenium's
``.text``: rendered text loses the difference between a line break and a
stanza break, and the parser can be unit-tested without a browser.
"""

from __future__ import annotations

import hashlib
import unicodedata
from html.parser import HTMLParser

#: Elements whose boundaries end a stanza.
BLOCK_TAGS = frozenset({"p", "div", "blockquote", "section", "article", "pre", "table", "tr", "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"})
#: Elements whose text is never part of the poem.
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "button", "svg"})
#: Characters that are invisible but break comparisons.
INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def clean(text: str | None) -> str:
    """NFC-normalise, drop invisible characters, collapse all whitespace."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text).translate(INVISIBLE)
    return " ".join(text.split())


class _PoemParser(HTMLParser):
    """Collect stanzas (lists of lines) from an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stanzas: list[list[str]] = []
        self._stanza: list[str] = []
        self._buffer: list[str] = []
        self._skip_depth = 0

    def _end_line(self, *, blank_ends_stanza: bool) -> None:
        line = clean("".join(self._buffer))
        self._buffer = []
        if line:
            self._stanza.append(line)
        elif blank_ends_stanza:
            self._end_stanza()

    def _end_stanza(self) -> None:
        if self._stanza:
            self.stanzas.append(self._stanza)
        self._stanza = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIP_TAGS:
            self._skip_depth += 1
        elif self._skip_depth:
            return
        elif tag == "br":
            self._end_line(blank_ends_stanza=True)
        elif tag in BLOCK_TAGS:
            self._end_line(blank_ends_stanza=False)
            self._end_stanza()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in SKIP_TAGS:  # <br/>, <p/>: same as the open tag
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif not self._skip_depth and tag in BLOCK_TAGS:
            self._end_line(blank_ends_stanza=False)
            self._end_stanza()

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._end_line(blank_ends_stanza=False)
        self._end_stanza()


def poem_stanzas(html: str) -> list[list[str]]:
    """Stanzas of the poem in ``html`` (the inner HTML of the poem element).

    Empty lines never appear inside a stanza; an empty result means the page
    held no poem (the caller treats it as malformed).
    """
    parser = _PoemParser()
    parser.feed(html or "")
    parser.close()
    return parser.stanzas


def content_key(lines: list[str]) -> str:
    """Key for "same poem, other URL": case and spacing do not count."""
    canon = "\n".join(clean(line).casefold() for line in lines)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()
