"""What a user asks for (PoemRequest) and what the engine answers (Poem).

The opening line is checked here, once, for every platform: NFC, control
characters removed, at most MAX_OPENING_CHARS characters, at least one
Vietnamese word. Errors carry a code and parameters; the bot turns them into
Vietnamese messages (bot/texts.py), the CLI prints them as they are.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.forms import (
    DEFAULT_FORM,
    FORM_BY_OPENING_LENGTH,
    MAX_STANZAS,
    MIN_STANZAS,
    RHYME_SCHEMES,
    Scores,
    get_form,
    stanzas_of,
)
from engine.prosody import is_vietnamese_syllable, syllables
from engine.settings import SamplingSettings

MAX_OPENING_CHARS = 120
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
_SPACES = re.compile(r"\s+")
# The prompt format's markup (<|5chu|>, <|endoftext|>, <|unk|>, any <|...|>): typed into an opening, the
# tokenizer would read it as the real token, and an end token cut the poem there, empty.
_MARKUP = re.compile(r"<\|[^<>|]*\|>")
# Zero-width spaces separate words in pasted text: a space, not nothing ("Mùa\u200bthu" is two words).
_ZERO_WIDTH_SPACES = "\u200b"


class InvalidRequest(ValueError):
    """A request the engine refuses; `code` names the reason for the texts module."""

    def __init__(self, code: str, **params: Any):
        super().__init__(f"{code}: {params}" if params else code)
        self.code = code
        self.params = params


def clean_opening(text: str) -> str:
    """Normalise an opening line, or raise InvalidRequest.

    The prompt format's markup is removed, zero-width spaces become spaces,
    other control and format characters are removed and spaces collapsed;
    the first letter is capitalised, as training does.
    """
    text = _MARKUP.sub(" ", unicodedata.normalize("NFC", text or ""))
    separators = "\t\n\r" + _ZERO_WIDTH_SPACES
    text = "".join(
        " " if ch in separators else ch
        for ch in text
        if ch in separators or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    text = _SPACES.sub(" ", text).strip()
    if not text:
        raise InvalidRequest("empty")
    if len(text) > MAX_OPENING_CHARS:
        raise InvalidRequest("too_long", length=len(text), limit=MAX_OPENING_CHARS)
    if not any(_is_marked_vietnamese(w) for w in syllables(text)):
        raise InvalidRequest("not_vietnamese")
    return text[0].upper() + text[1:]


def _is_marked_vietnamese(word: str) -> bool:
    """A Vietnamese syllable with at least one letter English does not have.

    Plain-ASCII words are ambiguous ("the", "ban"), so an opening must show at
    least one word written with Vietnamese diacritics or đ.
    """
    lower = word.lower()
    return is_vietnamese_syllable(word) and any(ch not in _ASCII_LETTERS for ch in lower)


@dataclass(frozen=True)
class PoemRequest:
    opening: str
    form: str | None = None  # None: chosen from the opening's length, else default_form
    stanzas: int = 1
    settings: SamplingSettings = field(default_factory=SamplingSettings)
    default_form: str = DEFAULT_FORM
    scheme: str | None = None  # rhyme scheme for 5, 7, 8 chữ (forms.RHYME_SCHEMES); None: the form's default

    def __post_init__(self) -> None:
        object.__setattr__(self, "opening", clean_opening(self.opening))
        if self.form is not None:
            try:
                get_form(self.form)
            except ValueError:
                raise InvalidRequest("unknown_form", form=self.form) from None
        get_form(self.default_form)
        if self.scheme is not None and self.scheme not in RHYME_SCHEMES:
            raise InvalidRequest("unknown_scheme", scheme=self.scheme)
        if (
            isinstance(self.stanzas, bool)
            or not isinstance(self.stanzas, int)
            or not (MIN_STANZAS <= self.stanzas <= MAX_STANZAS)
        ):
            raise InvalidRequest("stanzas", value=self.stanzas, low=MIN_STANZAS, high=MAX_STANZAS)
        n = len(syllables(self.opening))
        form = get_form(self.form_id)
        if n > form.length_of(0)[1]:
            raise InvalidRequest("opening_too_long_for_form", syllables=n, form=form.id, limit=form.length_of(0)[1])

    @property
    def form_id(self) -> str:
        if self.form:
            return self.form
        return FORM_BY_OPENING_LENGTH.get(len(syllables(self.opening)), self.default_form)


def poem_text(lines: Sequence[str]) -> str:
    """A poem's lines as shown to users (also while they are still being written): stanzas apart by a blank line."""
    return "\n\n".join("\n".join(s) for s in stanzas_of(lines))


@dataclass(frozen=True)
class Poem:
    opening: str
    form: str
    stanzas: int
    lines: tuple[str, ...]
    scores: Scores
    settings: SamplingSettings  # resolved: every value the backend used, seed included
    model_version: str
    prompt: str
    timings: dict[str, float]  # milliseconds: prepare_ms, generate_ms, total_ms
    candidates: int

    @property
    def text(self) -> str:
        return poem_text(self.lines)

    @property
    def seed(self) -> int:
        return int(self.settings.seed or 0)
