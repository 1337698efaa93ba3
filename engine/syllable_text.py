"""Text as a syllable-level model reads and writes it: one token per syllable.

A syllable-level tokenizer (a `WordLevel` model in an ordinary tokenizer.json)
has one token per Vietnamese syllable, each carrying the delimiter that
follows it ("mưa "), plus punctuation pieces (", " "? "), the line break
"\n" as an ordinary token, the form tags, the end token and an unknown token.
Trailing delimiters, not leading ones: grammar engines and our own automaton
match text by prefixes, and with leading-space tokens " nga" is a prefix of
" ngang".

So the model's text is a canonical spelling of a poem:

    poem:        "Mùa thu lá vàng rơi,\nGió heo may về qua"
    model text:  "mùa thu lá vàng rơi , \ngió heo may về qua "

`to_model` writes the canonical spelling (every word and punctuation run
followed by one space; words folded to the case the vocabulary holds);
`from_model` is the one normalisation the engine applies to what the model
wrote: no space before a line break or punctuation, none at a line's end, and
the first letter of every line in upper case.

Capital letters: the vocabulary holds lower-case syllables plus the
capitalised forms the corpus writes capitalised mid-line most of the time
(names: "Huế ", "Nội ", "Nguyễn "). A line's first letter is capitalised by
rule in `from_model`, so the model spends no tokens on "Mùa"/"mùa" twins and
the corpus's line-initial capitals come back exactly.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from engine.prompt import LINE_SEPARATOR, SPECIAL_TOKENS
from engine.prosody import WORD_PATTERN

UNKNOWN = "<|unk|>"
# Punctuation a model may read and write: runs of these marks (",", "?", "!..."),
# those the corpus uses often enough plus this basic set. Other marks (quotes,
# brackets, dashes) carry no syllable and are left out of the model's text.
PUNCTUATION_MARKS = ",.!?;:…"
PUNCTUATION = (",", ".", "!", "?", ";", ":", "...", "…")
MID_LINE_PUNCTUATION = (",",)  # the form allows only a comma inside a line

_PIECES = re.compile(WORD_PATTERN + r"|[^\w\s]+")
_SPECIAL = re.compile("(" + "|".join(re.escape(t) for t in (*SPECIAL_TOKENS, UNKNOWN)) + ")")
_SPACE_BEFORE = re.compile(r" +(?=[\n,.!?;:…]|$)")  # the marks of PUNCTUATION_MARKS


def is_word(piece: str) -> bool:
    return piece[:1].isalnum()


def is_punctuation(piece: str) -> bool:
    return bool(piece) and all(ch in PUNCTUATION_MARKS for ch in piece)


def pieces(line: str) -> list[str]:
    """A line's words and punctuation runs, in order ("rơi," -> "rơi", ",")."""
    return _PIECES.findall(unicodedata.normalize("NFC", line))


def lower_first(word: str) -> str:
    return word[:1].lower() + word[1:]


class SyllableCodec:
    """Poem text <-> the canonical model text, for one syllable vocabulary."""

    def __init__(self, vocab: Iterable[str]):
        # Token strings without their trailing space: "mưa", "Huế", ",", "\n".
        self.words = frozenset(t[:-1] for t in vocab if t.endswith(" "))

    def fold(self, word: str) -> str | None:
        """The vocabulary's spelling of a word, or None when it has none.

        A word is kept as written when the vocabulary has it ("Huế"); a
        capitalised word whose lower-case form is there is folded ("Mùa" ->
        "mùa"), losslessly at a line's start and lossily elsewhere.
        """
        if word in self.words:
            return word
        for form in (lower_first(word), word.lower()):
            if form in self.words:
                return form
        return None

    def lossless(self, line: str) -> bool:
        """Whether `from_model(to_model(line))` gives the line back exactly."""
        parts = pieces(line)
        for i, piece in enumerate(parts):
            if piece in self.words:
                continue
            if not (i == 0 and piece[:1].isupper() and lower_first(piece) in self.words):
                return False
        return bool(parts) and self.from_model(self.to_model(line)) == line

    def to_model(self, text: str) -> str:
        """The canonical model text of poem text (special tokens pass through).

        Unknown words stay as written (the tokenizer reads them as the unknown
        token); punctuation the vocabulary lacks is dropped.
        """
        out = []
        for chunk in _SPECIAL.split(text):
            if not chunk:
                continue
            if _SPECIAL.fullmatch(chunk):
                out.append(chunk)
                continue
            lines = []
            for line in chunk.split(LINE_SEPARATOR):
                words = []
                for piece in pieces(line):
                    if is_word(piece):
                        words.append((self.fold(piece) or piece) + " ")
                    elif piece in self.words:
                        words.append(piece + " ")
                lines.append("".join(words))
            out.append(LINE_SEPARATOR.join(lines))
        return "".join(out)

    @staticmethod
    def from_model(text: str, continues_line: bool = False) -> str:
        """What users read: no space before a line break or punctuation, capitalised lines.

        `continues_line`: the text goes on a line the user began, whose first
        letter is the user's, so the text's first line is not capitalised.
        """
        lines = [line.strip() for line in _SPACE_BEFORE.sub("", text).split(LINE_SEPARATOR)]
        return LINE_SEPARATOR.join(
            line if continues_line and i == 0 else line[:1].upper() + line[1:] for i, line in enumerate(lines)
        )


def is_syllable_tokenizer(tokenizer_json: dict) -> bool:
    """A tokenizer.json whose model is WordLevel is ours and syllable-level."""
    return (tokenizer_json.get("model") or {}).get("type") == "WordLevel"


def join_continuation(opening: str, continuation: str, opening_is_whole_line: bool) -> str:
    """The poem's text: the user's exact opening, then what the model wrote after it."""
    if opening_is_whole_line:
        return opening + LINE_SEPARATOR + continuation
    if not continuation or continuation[0] == LINE_SEPARATOR or continuation[0] in PUNCTUATION_MARKS:
        return opening + continuation
    return opening + " " + continuation


@lru_cache(maxsize=8)
def codec_for_model(model_dir: str | Path) -> SyllableCodec:
    """The codec of a syllable-level model directory (read once per model)."""
    data = json.loads((Path(model_dir) / "tokenizer.json").read_text(encoding="utf-8"))
    return SyllableCodec(data["model"]["vocab"])
