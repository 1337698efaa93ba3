"""Vietnamese poem forms and the checker that scores a poem against its form.

Each form says how many syllables each line has, where the tone class is fixed
(luật bằng trắc) and which syllables must rhyme (vần). Every stanza (khổ) has
four lines; a poem has 1-4 stanzas. The rules are the ones poetry textbooks
teach; the checker here and the decoding automaton (engine/automaton.py) read
them from this module only:

- 5 chữ (ngũ ngôn): syllables 2 and 4 of a line have opposite tone classes.
- 7 chữ (thất ngôn): luật bằng trắc, "nhất tam ngũ bất luận, nhị tứ lục phân
  minh": syllables 2, 4, 6 alternate, with niêm and đối between lines. The
  luật is chosen by the first line's 2nd syllable: luật bằng (B T B, T B T,
  T B T, B T B for syllables 2-4-6 of lines 1-4) or luật trắc (the mirror).
  Rhyming lines end on a bằng syllable, the others on a trắc one.
- 8 chữ: syllables 3, 6 and 8 alternate (B T B or T B T).
- lục bát: lines alternate 6 and 8 syllables; in both, syllable 2 is bằng, 4
  trắc, 6 bằng, and the 8th of the long line bằng. The 6th of a six-line
  rhymes with the 6th of the following eight-line, whose 8th rhymes with the
  6th of the next six-line, and so on across stanzas (vần lưng and vần chân).
- tự do: 2-12 syllables a line, no tone or rhyme rule.

5, 7 and 8 chữ rhyme the last syllables of a stanza's lines by a scheme
(`RHYME_SCHEMES`): vần liền (AABB), vần chéo (ABAB), vần ôm (ABBA) or the
tứ tuyệt scheme (lines 1, 2 and 4). Each has a default that its poets use
most (measured on the corpus, see the README) and users may pick another.
Rhyming syllables share a rhyme class and a tone class (prosody.rhymes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.prosody import ToneClass, rhymes, syllables, tone_class

B, T = ToneClass.BANG, ToneClass.TRAC
LINES_PER_STANZA = 4
MIN_STANZAS, MAX_STANZAS = 1, 4

# A tone pattern: (1-based position, class) pairs a line must have.
Pattern = tuple[tuple[int, ToneClass], ...]
# A luật: for each line of a stanza, the patterns a line may follow (any one).
Law = tuple[tuple[Pattern, ...], ...]

# Rhyme schemes: groups of a stanza's lines (0-based) whose last syllables rhyme.
RHYME_SCHEMES: dict[str, tuple[tuple[int, ...], ...]] = {
    "lien": ((0, 1), (2, 3)),  # vần liền, AABB
    "cheo": ((0, 2), (1, 3)),  # vần chéo, ABAB
    "om": ((0, 3), (1, 2)),  # vần ôm, ABBA
    "tutuyet": ((0, 1, 3),),  # tứ tuyệt: lines 1, 2 and 4
}
SCHEME_TITLES = {
    "lien": "vần liền (AABB)",
    "cheo": "vần chéo (ABAB)",
    "om": "vần ôm (ABBA)",
    "tutuyet": "tứ tuyệt (1, 2, 4)",
}


@dataclass(frozen=True)
class Form:
    id: str
    title: str  # the form's Vietnamese name, as poets call it
    line_lengths: tuple[tuple[int, int], ...]  # per line of a stanza: (min, max) syllables
    laws: tuple[Law, ...] = ()  # alternative luật; a poem follows one of them throughout
    default_scheme: str | None = None  # end-rhyme scheme (5, 7, 8 chữ); None: no scheme
    # Fixed rhyme links as ((line, position), (line, position)) with lines counted
    # within a stanza; line 4 means the first line of the next stanza (lục bát).
    rhyme_pairs: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = ()
    rhyme_tone: ToneClass | None = None  # rhyming line ends have this class; the others the opposite
    weights: dict[str, float] = field(default_factory=lambda: {"length": 0.4, "tone": 0.3, "rhyme": 0.3})

    def length_of(self, line_index: int) -> tuple[int, int]:
        return self.line_lengths[line_index % LINES_PER_STANZA]

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(RHYME_SCHEMES) if self.default_scheme else ()

    def scheme_or_default(self, scheme: str | None) -> str | None:
        return scheme if scheme in self.schemes else self.default_scheme

    def line_patterns(self, law: Law, line_index: int, scheme: str | None) -> tuple[Pattern, ...]:
        """The patterns line `line_index` may follow under a luật, end tone included."""
        patterns = law[line_index % LINES_PER_STANZA] if law else ((),)
        if self.rhyme_tone is None:
            return patterns
        last = self.length_of(line_index)[1]
        rhyming = any(
            line_index % LINES_PER_STANZA in group and len(group) > 1
            for group in RHYME_SCHEMES[self.scheme_or_default(scheme)]
        )
        end = self.rhyme_tone if rhyming else (T if self.rhyme_tone == B else B)
        return tuple(p + ((last, end),) for p in patterns)

    def rhyme_groups(self, n_lines: int, scheme: str | None = None) -> list[list[tuple[int, int]]]:
        """Absolute (line, position) groups whose syllables must rhyme, in a poem of n_lines."""
        groups: list[list[tuple[int, int]]] = []
        if self.default_scheme:
            for start in range(0, n_lines, LINES_PER_STANZA):
                for group in RHYME_SCHEMES[self.scheme_or_default(scheme)]:
                    members = [(start + i, self.length_of(i)[1]) for i in group if start + i < n_lines]
                    if len(members) > 1:
                        groups.append(members)
            return groups
        # Fixed links: chain them into groups (lục bát: 8th of a long line, 6th of the
        # next two lines).
        of: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for start in range(0, n_lines, LINES_PER_STANZA):
            for (la, pa), (lb, pb) in self.rhyme_pairs:
                a, b = (start + la, pa), (start + lb, pb)
                if b[0] >= n_lines:
                    continue
                group = of.get(a) or of.get(b)
                if group is None:
                    group = []
                    groups.append(group)
                for member in (a, b):
                    if member not in group:
                        group.append(member)
                    of[member] = group
        return [sorted(g) for g in groups]

    def rhyme_positions(self, n_lines: int, scheme: str | None = None) -> list[tuple[tuple[int, int], tuple[int, int]]]:
        """Pairs of (line, position) that must rhyme: each group member with the one before it."""
        return [(g[i - 1], g[i]) for g in self.rhyme_groups(n_lines, scheme) for i in range(1, len(g))]

    @property
    def fixed_length(self) -> bool:
        return all(lo == hi for lo, hi in self.line_lengths)

    def is_whole_line(self, opening: str) -> bool:
        """Whether an opening fills the first line (else the model completes it)."""
        lo, hi = self.length_of(0)
        return len(syllables(opening)) >= (hi if self.fixed_length else lo)


def stanzas_of(lines: Sequence[str]) -> list[list[str]]:
    """A poem's lines cut into stanzas of LINES_PER_STANZA (the last one may be short)."""
    return [list(lines[i : i + LINES_PER_STANZA]) for i in range(0, len(lines), LINES_PER_STANZA)]


def _same(n: int) -> tuple[tuple[int, int], ...]:
    return ((n, n),) * LINES_PER_STANZA


def _alternating(positions: tuple[int, ...], first: ToneClass) -> Pattern:
    """Classes alternating over `positions`, starting with `first` (B T B...)."""
    other = T if first == B else B
    return tuple((pos, first if i % 2 == 0 else other) for i, pos in enumerate(positions))


def _either(positions: tuple[int, ...]) -> tuple[Pattern, ...]:
    return (_alternating(positions, B), _alternating(positions, T))


# 7 chữ: luật bằng when the first line's 2nd syllable is bằng. Lines 1 and 2
# are đối (opposite), lines 2 and 3 niêm (alike), lines 3 and 4 đối, and line 4
# niêm with the next stanza's line 1.
_SEVEN_POSITIONS = (2, 4, 6)
_LUAT_BANG: Law = tuple((_alternating(_SEVEN_POSITIONS, first),) for first in (B, T, T, B))
_LUAT_TRAC: Law = tuple((_alternating(_SEVEN_POSITIONS, first),) for first in (T, B, B, T))
_FIVE: Law = (_either((2, 4)),) * LINES_PER_STANZA
_EIGHT: Law = (_either((3, 6, 8)),) * LINES_PER_STANZA
_SIX_LINE = ((2, B), (4, T), (6, B))
_LUC_BAT: Law = ((_SIX_LINE,), (_SIX_LINE + ((8, B),),), (_SIX_LINE,), (_SIX_LINE + ((8, B),),))

FORMS: dict[str, Form] = {
    f.id: f
    for f in (
        Form("5chu", "5 chữ", _same(5), (_FIVE,), default_scheme="cheo"),
        Form("7chu", "7 chữ", _same(7), (_LUAT_BANG, _LUAT_TRAC), default_scheme="tutuyet", rhyme_tone=B),
        Form("8chu", "8 chữ", _same(8), (_EIGHT,), default_scheme="om"),
        Form(
            "lucbat",
            "lục bát",
            ((6, 6), (8, 8), (6, 6), (8, 8)),
            (_LUC_BAT,),
            rhyme_pairs=(((0, 6), (1, 6)), ((1, 8), (2, 6)), ((2, 6), (3, 6)), ((3, 8), (4, 6))),
        ),
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


def _fits(sylls: list[str], pattern: Pattern) -> bool:
    return all(pos <= len(sylls) and tone_class(sylls[pos - 1]) == cls for pos, cls in pattern)


def _tone_fits(form: Form, sylls: list[list[str]], scheme: str | None) -> list[bool]:
    """For each line, whether it follows its tone rule, under the luật that fits most lines."""
    options = [
        [any(_fits(s, p) for p in form.line_patterns(law, i, scheme)) for i, s in enumerate(sylls)] for law in form.laws
    ]
    return max(options, key=sum)


def check(lines: list[str], form: Form | str, stanzas: int | None = None, scheme: str | None = None) -> Scores:
    """Score a poem against a form: each criterion 0..1 plus a weighted total.

    `stanzas` fixes the expected number of lines; without it any whole number
    of stanzas is accepted (a missing or extra line still counts as wrong).
    `scheme` is the rhyme scheme (5, 7, 8 chữ); None means the form's default.
    """
    form = get_form(form) if isinstance(form, str) else form
    lines = [ln for ln in lines if ln.strip()]
    sylls = [syllables(ln) for ln in lines]
    violations: list[Violation] = []

    expected = (
        stanzas * LINES_PER_STANZA
        if stanzas
        else max(LINES_PER_STANZA, -(-len(lines) // LINES_PER_STANZA) * LINES_PER_STANZA)
    )
    if len(lines) != expected:
        violations.append(Violation(min(len(lines), expected) + 1, "lines", f"{len(lines)} lines, expected {expected}"))
    good_length = 0
    for i, s in enumerate(sylls[:expected]):
        lo, hi = form.length_of(i)
        if lo <= len(s) <= hi:
            good_length += 1
        else:
            want = str(lo) if lo == hi else f"{lo}-{hi}"
            violations.append(Violation(i + 1, "length", f"{len(s)} syllables, expected {want}"))
    length = good_length / max(expected, len(lines)) if lines else 0.0

    tone = 1.0
    if form.laws:
        fits = _tone_fits(form, sylls, scheme)
        violations += [Violation(i + 1, "tone", "bằng/trắc pattern broken") for i, ok in enumerate(fits) if not ok]
        tone = sum(fits) / len(fits) if fits else 1.0

    pairs = form.rhyme_positions(len(lines), scheme)
    rhyme_ok = 0
    for (la, pa), (lb, pb) in pairs:
        a = sylls[la][pa - 1] if pa <= len(sylls[la]) else ""
        b = sylls[lb][pb - 1] if pb <= len(sylls[lb]) else ""
        if rhymes(a, b):
            rhyme_ok += 1
        else:
            violations.append(
                Violation(lb + 1, "rhyme", f"{b or '-'!s} does not rhyme with {a or '-'!s} (line {la + 1})")
            )
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
        if (
            form.fixed_length
            and (form.id != "lucbat" or len(lines) % 2 == 0)
            and all(form.length_of(i)[0] == c for i, c in enumerate(counts))
        ):
            return form.id
    if all(2 <= c <= 12 for c in counts):
        return "tudo"
    return None
