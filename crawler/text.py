"""From a poem's HTML to clean lines and stanzas, and a key for duplicates.

The poem sits in one element with ``<br>`` at the end of each line and ``<p>``
(or a blank line, ``<br><br>``) between stanzas. We parse the element's
serialised HTML with the standard library rather than reading Selenium's
``.text``: rendered text loses the difference between a line break and a
stanza break, and the parser can be unit-tested without a browser.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from html.parser import HTMLParser

#: Elements whose boundaries end a stanza.
BLOCK_TAGS = frozenset(
    {
        "p",
        "div",
        "blockquote",
        "section",
        "article",
        "pre",
        "table",
        "tr",
        "ul",
        "ol",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }
)
#: Elements whose text is never part of the poem (footnote marks and small print included).
SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "iframe", "button", "svg", "sup", "small"})
#: Elements that have no end tag.
VOID_TAGS = frozenset(
    {"br", "img", "hr", "input", "meta", "link", "wbr", "area", "base", "col", "embed", "source", "track"}
)
#: Elements with one of these words in their class hold notes about the poem, not the poem.
NOTE_CLASSES = ("note", "source", "footnote", "caption", "small", "chu-thich", "ghi-chu")
#: A whole line that is an editorial note: "(Trích)", "[1] a footnote", "Nguồn: ...", "Chú thích: ...".
NOTE_LINE = re.compile(
    r"^(?:[(\[].*[)\]]|[(\[]\d{1,3}[)\]].*|(?:nguồn|trích|chú thích|ghi chú|source)\s*:.*)$", re.IGNORECASE
)
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
        if line and not NOTE_LINE.match(line):
            self._stanza.append(line)
        elif blank_ends_stanza:
            self._end_stanza()

    def _end_stanza(self) -> None:
        if self._stanza:
            self.stanzas.append(self._stanza)
        self._stanza = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth:
            if tag not in VOID_TAGS:  # nested inside a skipped element: its end tag must not end the skip
                self._skip_depth += 1
        elif tag in SKIP_TAGS or _is_note(tag, attrs):
            self._skip_depth = 1
            if tag in BLOCK_TAGS:  # a note block ends the line before it
                self._end_line(blank_ends_stanza=False)
        elif tag == "br":
            self._end_line(blank_ends_stanza=True)
        elif tag in BLOCK_TAGS:
            self._end_line(blank_ends_stanza=False)
            self._end_stanza()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip_depth and tag not in SKIP_TAGS and not _is_note(tag, attrs):  # <br/>, <p/>
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            if tag not in VOID_TAGS:
                self._skip_depth -= 1
        elif tag in BLOCK_TAGS:
            self._end_line(blank_ends_stanza=False)
            self._end_stanza()

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._buffer.append(data)

    def close(self) -> None:
        super().close()
        self._end_line(blank_ends_stanza=False)
        self._end_stanza()


def _is_note(tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    classes = " ".join(value or "" for name, value in attrs if name == "class").lower()
    return tag != "br" and any(word in classes for word in NOTE_CLASSES)


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
