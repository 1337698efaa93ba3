"""A poem form compiled into a decoding constraint (a regular expression).

The regex describes exactly the text the model may write after the prompt:
the rest of the first line when the user gave only a few words, then every
further line with the form's syllable count, then nothing (the end token).
Each backend hands the same regex to its grammar engine (xgrammar on CPU,
vLLM's structured outputs on GPU), so every poem has the right number of lines
and of syllables per line while it is decoded, never fixed afterwards.

Beyond counts the regex also fixes:
- the tone class (bằng/trắc) wherever the form fixes it, choosing between a
  line's alternative patterns;
- the rhyme of a syllable whose partner the user already wrote (lục bát: the
  6th syllable of line 2 rhymes with the end of the user's six-syllable line).
Rhymes between two generated syllables cannot be written as a regex; the engine
draws several candidates and keeps the best by the checker for those.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from engine.forms import LINES_PER_STANZA, Form, get_form
from engine.prompt import LINE_SEPARATOR, prompt_for
from engine.prosody import (
    BASE_VOWELS,
    OBLIQUE_VOWELS,
    ONSETS,
    ToneClass,
    rhyme_key,
    split_syllable,
    strip_tone,
    syllables,
    tone_class,
)


def _cls(chars: str) -> str:
    return "[" + chars + "]"


_GRAVE = "".join(unicodedata.normalize("NFC", v + "\u0300") for v in BASE_VOWELS)
_P, _PU = _cls(BASE_VOWELS), _cls(BASE_VOWELS + BASE_VOWELS.upper())  # vowels without a tone mark
_H, _HU = _cls(_GRAVE), _cls(_GRAVE + _GRAVE.upper())  # huyền (still bằng)
_O, _OU = _cls(OBLIQUE_VOWELS), _cls(OBLIQUE_VOWELS + OBLIQUE_VOWELS.upper())  # sắc hỏi ngã nặng

MAX_SYLLABLE_LETTERS = 8  # onset (up to 3 letters) + nucleus (up to 3) + coda (up to 2)
# Punctuation a syllable may carry, as in the corpus ("rơi," "đâu?" "vậy!").
# Mid-line only a comma: a model that wanted a shorter line used ". ? ! ..."
# to close its sentence and then padded the line with a stray word.
_PUNCT_MID = r"(,)?"
_PUNCT = r"(,|\.|!|\?|;|:|\.\.\.)?"
_MAX_CHARS_PER_SYLLABLE = 1 + MAX_SYLLABLE_LETTERS + 3  # space, letters, "..."

# Onsets (prosody.ONSETS) and codas as Vietnamese spells them; the vowels between
# them form the nucleus (glides included, "oa", "uyê", "ươi").
_CODAS = ("ng", "nh", "ch", "c", "m", "n", "p", "t")
_ONSET = "(" + "|".join(ONSETS + tuple(o.capitalize() for o in ONSETS)) + ")"
_CODA = "(" + "|".join(_CODAS) + ")?"

# A syllable is onset + nucleus (1-3 vowels) + coda, may start with a capital
# (names, the first word of a line), and carries at most one tone mark: a
# bằng syllable none or huyền, a trắc one exactly one sắc/hỏi/ngã/nặng vowel.
_NUCLEUS = {  # (after an onset, starting the syllable); at most 3 vowel letters ("ươi", "oai", "uyê")
    ToneClass.BANG: (
        f"({_P}{{1,3}}|{_P}{{0,2}}{_H}|{_P}?{_H}{_P}|{_H}{_P}{{1,2}})",
        f"({_PU}{_P}{{0,2}}|{_PU}{_P}?{_H}|{_PU}{_H}{_P}|{_HU}{_P}{{0,2}})",
    ),
    ToneClass.TRAC: (
        f"({_P}{{0,2}}{_O}|{_P}?{_O}{_P}|{_O}{_P}{{1,2}})",
        f"({_PU}{_P}?{_O}|{_PU}{_O}{_P}|{_OU}{_P}{{0,2}})",
    ),
}


def _syllable(cls: ToneClass) -> str:
    after_onset, bare = _NUCLEUS[cls]
    return f"({_ONSET}{after_onset}|{bare}){_CODA}"


SYLLABLE = {ToneClass.BANG: _syllable(ToneClass.BANG), ToneClass.TRAC: _syllable(ToneClass.TRAC)}
SYLLABLE[None] = f"({SYLLABLE[ToneClass.BANG]}|{SYLLABLE[ToneClass.TRAC]})"

_TONE_MARKS = {ToneClass.BANG: ("", "\u0300"), ToneClass.TRAC: ("\u0301", "\u0309", "\u0303", "\u0323")}


def _place_tone(rime: str, mark: str) -> str:
    """Write a tone mark on a rime where Vietnamese spelling puts it.

    On the last of ă â ê ô ơ ư if there is one ("ười", "uống", "iền"); else on
    the only vowel; else on the last vowel before a coda ("ích") and on the
    first of an open pair ("ài", "ìa", "ùa").
    """
    vowels = [i for i, ch in enumerate(rime) if ch in BASE_VOWELS]
    if not mark or not vowels:
        return rime
    marked = [i for i in vowels if rime[i] in "ăâêôơư"]
    if marked:
        at = marked[-1]
    elif len(vowels) == 1 or vowels[-1] != len(rime) - 1:
        at = vowels[-1]
    else:
        at = vowels[0]
    return unicodedata.normalize("NFC", rime[: at + 1] + mark + rime[at + 1 :])


@lru_cache(maxsize=8)
def _rhyme_index(lexicon: frozenset[str]) -> dict[tuple, list[str]]:
    """Lexicon words grouped by rhyme key, built once per model."""
    index: dict[tuple, list[str]] = {}
    for word in sorted(lexicon):
        index.setdefault(rhyme_key(word), []).append(word)
    return index


MIN_LEXICON_RHYMES = 3  # fewer real words than this: fall back to spelling rules


@lru_cache(maxsize=8192)
def rhyming_syllable(partner: str, lexicon: frozenset[str] = frozenset()) -> str:
    """A regex for a syllable that rhymes with `partner` (same rhyme class and tone class).

    With a lexicon, the real words that rhyme (a forced rhyme never invents a
    non-word); else every spelling Vietnamese orthography allows.
    """
    if lexicon:
        own_onset = split_syllable(partner)[0]
        words = [w for w in _rhyme_index(lexicon).get(rhyme_key(partner), []) if split_syllable(w)[0] != own_onset]
        if len(words) >= MIN_LEXICON_RHYMES:
            return "(" + "|".join(words + [w[0].upper() + w[1:] for w in words]) + ")"
    return _spelled_rhyme(partner)


def _spelled_rhyme(partner: str) -> str:
    rime, cls = rhyme_key(partner)
    # Every spelling in the rhyme class (prosody.rhyme_class): i/y, a/ă/â, o/ô/ơ.
    spellings = {rime}
    if rime.startswith("i"):
        spellings.add("y" + rime[1:])
    if len(rime) >= 2 and rime[0] == "a":
        spellings |= {v + rime[1:] for v in "ăâ"}
    if len(rime) >= 2 and rime[0] == "o" and rime[1] in "nmti":
        spellings |= {v + rime[1:] for v in "ôơ"}
    variants = {_place_tone(spelt, mark) for spelt in spellings for mark in _TONE_MARKS[cls]}
    if not variants:  # not a Vietnamese syllable: keep only its tone class
        return SYLLABLE[cls]
    rimes = sorted(variants, key=lambda v: (-len(v), v))
    # Repeating the partner's onset would mostly repeat the partner itself,
    # which is not a rhyme; a partner with no onset excludes the bare rime.
    own_onset, _, _ = split_syllable(partner)
    onsets = [o for o in ONSETS if o != own_onset and not (own_onset == "q" and o == "qu")]
    # The medial glide, spelt as prosody.split_syllable reads it: o before a/ă/e,
    # u before â/ê/y/ơ; "qu" carries its own glide and takes none.
    groups: dict[str, list[str]] = {}
    for r in rimes:
        base = strip_tone(r)[:1]
        glide = "o?" if base in "aăe" else "u?" if base in "âêyơ" else ""
        groups.setdefault(glide, []).append(r)
    optional = "?" if own_onset else ""
    alternatives = []
    for glide, rs in groups.items():
        # Before an i-rime "g"/"gi" are ambiguous ("gìn" reads gi + n): leave them out.
        allowed = [
            o for o in onsets if not (glide and o == "qu") and not (o in ("g", "gi") and strip_tone(rs[0])[:1] in "iy")
        ]
        allowed = sorted(allowed + [o.capitalize() for o in allowed], key=lambda o: (-len(o), o))
        alternatives.append(f"({'|'.join(allowed)}){optional}{glide}({'|'.join(rs)})")
    return "(" + "|".join(alternatives) + ")"


def _line_regex(
    form: Form,
    line_index: int,
    given: list[str],
    rhyme_with: dict[int, str],
    lexicon: frozenset[str] = frozenset(),
    scheme: str | None = None,
    laws: tuple = (),
) -> str:
    """The regex for the part of a line after its `given` syllables.

    `rhyme_with` maps a 1-based position of this line to a syllable it must
    rhyme with. Returns "" when nothing is left to write.
    """
    lo, hi = form.length_of(line_index)
    start = len(given) + 1
    patterns = tuple(
        dict.fromkeys(p for law in (laws or form.laws) for p in form.line_patterns(law, line_index, scheme))
    ) or ((),)
    # Keep the tone patterns the user's own syllables already obey; if none,
    # the user's words win and the line is left free of tone rules.
    fitting = [p for p in patterns if all(pos > len(given) or tone_class(given[pos - 1]) == cls for pos, cls in p)] or [
        ()
    ]
    alternatives = []
    for pattern in fitting:
        fixed = dict(pattern)
        parts = []
        for pos in range(start, hi + 1):
            if pos in rhyme_with:
                syl = rhyming_syllable(rhyme_with[pos], lexicon)
            else:
                syl = SYLLABLE[fixed.get(pos)]
            piece = ("" if pos == 1 else " ") + syl + (_PUNCT if pos >= lo else _PUNCT_MID)
            parts.append(piece if pos <= lo else f"({piece})?")
        alternatives.append("".join(parts))
    alternatives = list(dict.fromkeys(alternatives))
    if alternatives == [""]:
        return ""
    return alternatives[0] if len(alternatives) == 1 else "(" + "|".join(alternatives) + ")"


@dataclass(frozen=True)
class Segment:
    """A stretch of lines decoded in one backend call."""

    regex: str
    max_new_tokens: int  # enough for the longest text the regex admits, one byte a token
    last: bool  # the poem ends after this segment


@dataclass(frozen=True)
class Plan:
    """How to decode one poem: its prompt and the segments that follow it.

    A poem is decoded in segments that end where a syllable another line must
    rhyme with has just been written, so the next segment's regex can demand
    that rhyme. 5 chữ and 7 chữ: lines 1-2, then 3-4 (line 4 rhymes with line
    2); lục bát: a segment per line after the second.
    """

    form: str
    prompt: str
    opening: str
    n_lines: int
    opening_is_whole_line: bool
    breaks: tuple[int, ...]  # a segment ends after each of these line indices
    lexicon: frozenset[str] = frozenset()  # the model's real syllables, for forced rhymes
    scheme: str | None = None  # the rhyme scheme (5, 7, 8 chữ); None: the form's default

    def segment(self, text_so_far: str) -> Segment:
        """The next segment, given the poem written so far (opening included)."""
        form = get_form(self.form)
        lines = text_so_far.split(LINE_SEPARATOR)
        known = [syllables(line) for line in lines]
        first = self._first_open_line(lines)
        last = next(b for b in self.breaks if b >= first)
        rhymes: dict[int, dict[int, str]] = {}
        for (la, pa), (lb, pb) in form.rhyme_positions(self.n_lines, self.scheme):
            if la < first <= lb and pa <= len(known[la]):
                rhymes.setdefault(lb, {})[pb] = known[la][pa - 1]
        # The luật the lines written so far follow (7 chữ: chosen by line 1); all if none fits.
        laws = (
            tuple(
                law
                for law in form.laws
                if all(
                    any(
                        all(pos <= len(known[i]) and tone_class(known[i][pos - 1]) == cls for pos, cls in p)
                        for p in form.line_patterns(law, i, self.scheme)
                    )
                    for i in range(first)
                )
            )
            or form.laws
        )
        pieces, n_syllables = [], 0
        for i in range(first, last + 1):
            given = known[i] if i < len(lines) else []
            # A line not yet begun in the text starts with the separator.
            pieces.append(
                ("" if i < len(lines) else LINE_SEPARATOR)
                + _line_regex(form, i, given, rhymes.get(i, {}), self.lexicon, self.scheme, laws)
            )
            n_syllables += form.length_of(i)[1] - len(given)
        max_tokens = n_syllables * _MAX_CHARS_PER_SYLLABLE + (last - first) + 3
        return Segment(regex="".join(pieces), max_new_tokens=max_tokens, last=last == self.n_lines - 1)

    def _first_open_line(self, lines: list[str]) -> int:
        """The index of the first line still to be written or completed."""
        form = get_form(self.form)
        i = len(lines) - 1
        if lines[-1] == "":
            return i
        lo, hi = form.length_of(i)
        full = len(syllables(lines[-1])) >= (hi if form.fixed_length else lo)
        return i + 1 if full else i

    def unconstrained_max_tokens(self) -> int:
        form = get_form(self.form)
        return sum(form.length_of(i)[1] for i in range(self.n_lines)) * _MAX_CHARS_PER_SYLLABLE + self.n_lines + 3


def plan(
    form_id: str, opening: str, stanzas: int, lexicon: frozenset[str] = frozenset(), scheme: str | None = None
) -> Plan:
    """Compile a form, an opening line and a number of stanzas into a Plan."""
    form = get_form(form_id)
    whole = form.is_whole_line(opening)
    n_lines = stanzas * LINES_PER_STANZA
    breaks = sorted(
        {la for (la, _), (lb, _) in form.rhyme_positions(n_lines, scheme) if la >= 1 or not whole} | {n_lines - 1}
    )
    return Plan(form.id, prompt_for(form.id, opening, whole), opening, n_lines, whole, tuple(breaks), lexicon, scheme)
