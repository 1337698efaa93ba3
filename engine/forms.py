"""Vietnamese poem forms and the checker that scores a poem against its form.

Each form says how many syllables each line has, where the tone class is fixed
(luật bằng trắc) and which syllables must rhyme (vần). Every stanza (khổ) has
four lines; a poem has 1-4 stanzas. The rules kept here are the common core of
each form as taught in school, written so that a checker can score any poem:

- 5 chữ (ngũ ngôn): syllables 2 and 4 of a line have opposite tone classes;
  the last syllables of lines 2 and 4 of a stanza rhyme.
- 7 chữ (thất ngôn): syllables 2, 4, 6 alternate (B T B or T B T); lines 2 and
  4 end on a bằng syllable and rhyme.
- 8 chữ: lines 2 and 4 end on a bằng syllable and rhyme (vần gián cách).
- lục bát: lines alternate 6 and 8 syllables; in both, syllable 2 is bằng, 4
  trắc, 6 bằng, and the 8th of the long line bằng. The 6th of a six-line
  rhymes with the 6th of the following eight-line, whose 8th rhymes with the
  6th of the next six-line (across stanzas too).
- tự do: 2-12 syllables a line, no tone or rhyme rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.prosody import ToneClass, rhymes, syllables, tone_class

B, T = ToneClass.BANG, ToneClass.TRAC
LINES_PER_STANZA = 4
MIN_STANZAS, MAX_STANZAS = 1, 4


@dataclass(frozen=True)
class Form:
    id: str
    title: str  # the form's Vietnamese name, as poets call it
    line_lengths: tuple[tuple[int, int], ...]  # per line of a stanza: (min, max) syllables
    # Per line of a stanza: alternative tone patterns, each a tuple of
    # (1-based position, class); a line obeys the rule when one pattern fits.
    tone_patterns: tuple[tuple[tuple[tuple[int, ToneClass], ...], ...], ...] = ()
    # Rhyme pairs as ((line, position), (line, position)) with lines counted
    # within a stanza; line 4 means the first line of the next stanza.
    rhyme_pairs: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = ()
    weights: dict[str, float] = field(default_factory=lambda: {"length": 0.4, "tone": 0.3, "rhyme": 0.3})

    def length_of(self, line_index: int) -> tuple[int, int]:
        return self.line_lengths[line_index % LINES_PER_STANZA]

    def patterns_of(self, line_index: int) -> tuple[tuple[tuple[int, ToneClass], ...], ...]:
        if not self.tone_patterns:
            return ()
        return self.tone_patterns[line_index % LINES_PER_STANZA]

    def rhyme_positions(self, n_lines: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """Absolute (line, position) pairs that must rhyme in a poem of n_lines."""
        pairs = []
        for start in range(0, n_lines, LINES_PER_STANZA):
            for (la, pa), (lb, pb) in self.rhyme_pairs:
                if start + lb < n_lines:
                    pairs.append(((start + la, pa), (start + lb, pb)))
        return pairs

    @property
    def fixed_length(self) -> bool:
        return all(lo == hi for lo, hi in self.line_lengths)


def _same(n: int) -> tuple[tuple[int, int], ...]:
    return ((n, n),) * LINES_PER_STANZA


_ALT_2_4 = (((2, B), (4, T)), ((2, T), (4, B)))
_SEVEN_FREE_END = (((2, B), (4, T), (6, B)), ((2, T), (4, B), (6, T)))
_SEVEN_BANG_END = tuple(p + ((7, B),) for p in _SEVEN_FREE_END)
_SIX = (((2, B), (4, T), (6, B)),)
_EIGHT = (((2, B), (4, T), (6, B), (8, B)),)

FORMS: dict[str, Form] = {
    f.id: f
    for f in (
        Form("5chu", "5 chữ", _same(5), (_ALT_2_4,) * 4, (((1, 5), (3, 5)),)),
        Form("7chu", "7 chữ", _same(7), (_SEVEN_FREE_END, _SEVEN_BANG_END, _SEVEN_FREE_END, _SEVEN_BANG_END),
             (((1, 7), (3, 7)),)),
        Form("8chu", "8 chữ", _same(8), ((), (((8, B),),), (), (((8, B),),)), (((1, 8), (3, 8)),)),
        Form("lucbat", "lục bát", ((6, 6), (8, 8), (6, 6), (8, 8)), (_SIX, _EIGHT, _SIX, _EIGHT),
             (((0, 6), (1, 6)), ((1, 8), (2, 6)), ((2, 6), (3, 6)), ((3, 8), (4, 6)))),
        Form("tudo", "tự do", ((2, 12),) * 4, weights={"length": 1.0, "tone": 0.0, "rhyme": 0.0}),
    )
}
FORM_IDS = tuple(FORMS)
DEFAULT_FORM = "5chu"

# Opening lines of these lengths choose their form when the user names none.
FORM_BY_OPENING_LENGTH = {5: "5chu", 6: "lucbat", 7: "7chu", 8: "8chu"}


def get_form(form_id: str) -> Form:
    try:
        return FORMS[form_id]
    except KeyError:
        raise ValueError(f"unknown form {form_id!r}; known: {', '.join(FORM_IDS)}") from None


@dataclass(frozen=True)
class Violation:
    """One broken rule: which line (1-based), which rule, and the details."""

    line: int
    rule: str  # "lines", "length", "tone" or "rhyme"
    detail: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.rule}: {self.detail}"


@dataclass(frozen=True)
class Scores:
    length: float
    tone: float
    rhyme: float
    total: float
    violations: tuple[Violation, ...] = ()

    def as_dict(self) -> dict[str, float]:
        return {"length": self.length, "tone": self.tone, "rhyme": self.rhyme, "total": self.total}


def _fits(sylls: list[str], pattern: tuple[tuple[int, ToneClass], ...]) -> bool:
    return all(pos <= len(sylls) and tone_class(sylls[pos - 1]) == cls for pos, cls in pattern)


def check(lines: list[str], form: Form | str, stanzas: int | None = None) -> Scores:
    """Score a poem against a form: each criterion 0..1 plus a weighted total.

    `stanzas` fixes the expected number of lines; without it any whole number
    of stanzas is accepted (a missing or extra line still counts as wrong).
    """
    form = get_form(form) if isinstance(form, str) else form
    lines = [ln for ln in lines if ln.strip()]
    sylls = [syllables(ln) for ln in lines]
    violations: list[Violation] = []

    expected = stanzas * LINES_PER_STANZA if stanzas else max(
        LINES_PER_STANZA, -(-len(lines) // LINES_PER_STANZA) * LINES_PER_STANZA)
    if len(lines) != expected:
        violations.append(Violation(min(len(lines), expected) + 1, "lines",
                                    f"{len(lines)} lines, expected {expected}"))
    good_length = 0
    for i, s in enumerate(sylls[:expected]):
        lo, hi = form.length_of(i)
        if lo <= len(s) <= hi:
            good_length += 1
        else:
            want = str(lo) if lo == hi else f"{lo}-{hi}"
            violations.append(Violation(i + 1, "length", f"{len(s)} syllables, expected {want}"))
    length = good_length / max(expected, len(lines)) if lines else 0.0

    tone_total = tone_ok = 0
    for i, s in enumerate(sylls):
        patterns = form.patterns_of(i)
        if not patterns:
            continue
        tone_total += 1
        if any(_fits(s, p) for p in patterns):
            tone_ok += 1
        else:
            violations.append(Violation(i + 1, "tone", "bằng/trắc pattern broken"))
    tone = tone_ok / tone_total if tone_total else 1.0

    pairs = form.rhyme_positions(len(lines))
    rhyme_ok = 0
    for (la, pa), (lb, pb) in pairs:
        a = sylls[la][pa - 1] if pa <= len(sylls[la]) else ""
        b = sylls[lb][pb - 1] if pb <= len(sylls[lb]) else ""
        if rhymes(a, b):
            rhyme_ok += 1
        else:
            violations.append(Violation(lb + 1, "rhyme", f"{b or '-'!s} does not rhyme with {a or '-'!s} (line {la + 1})"))
    rhyme = rhyme_ok / len(pairs) if pairs else 1.0

    w = form.weights
    total = (w["length"] * length + w["tone"] * tone + w["rhyme"] * rhyme) / sum(w.values())
    return Scores(round(length, 4), round(tone, 4), round(rhyme, 4), round(total, 4), tuple(violations))


def label_form(lines: list[str]) -> str | None:
    """The fixed form whose length rules every line obeys, if any.

    Training labels poems with this rather than the corpus's heuristic field.
    Poems with no fixed form are `tudo` when their lines fit it, else None.
    """
    if not lines:
        return None
    counts = [len(syllables(ln)) for ln in lines]
    for form in FORMS.values():
        if form.fixed_length and (form.id != "lucbat" or len(lines) % 2 == 0) and all(
                form.length_of(i)[0] == c for i, c in enumerate(counts)):
            return form.id
    if all(2 <= c <= 12 for c in counts):
        return "tudo"
    return None
