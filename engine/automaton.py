"""A poem form as an automaton over syllables: what may come next, given what is written.

For a syllable-level model every token is a whole syllable, a punctuation
mark, the line break or the end token, so the whole form can be enforced in
one pass: before each token the automaton says what the next piece may be
(`Next`), a vocabulary turns that into a boolean mask over token ids
(engine/vocab_masks.py), and the chosen token moves the automaton on. It
knows the form's counts, tone patterns (luật, chosen as the poem goes), every
rhyme link (including two generated syllables), the punctuation rules and
where the line break and end token go.

No dead ends: the first syllable of a rhyme group may only take a rhyme key
for which the vocabulary holds enough distinct syllables to fill the group
(`Next.leads`), and a later member may only take that key. Where the user's
own opening breaks a rule (a tone pattern no luật allows), the automaton
keeps the user's words, does not judge them, and still applies the patterns
to the positions the model writes; a rhyme the user's last syllable sets wins
over a tone rule.

The automaton is pure Python over syllable strings: the same class serves
the transformers backend, vLLM's logits processors in process and on remote
servers, and beam search (`fork`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from engine.forms import LINES_PER_STANZA, Form, get_form
from engine.prosody import ToneClass, identity, rhyme_key, tone_class
from engine.syllable_text import MID_LINE_PUNCTUATION, is_word, pieces

SYLLABLE, PUNCT, NEWLINE, END = "syllable", "punct", "newline", "end"
EXTRA_ARG = "tho_form"  # the key a vLLM request carries its FormSpec under (engine/backends/vllm_form.py)


@dataclass(frozen=True)
class FormSpec:
    """Everything that fixes a poem's automaton; plain values, so it travels as JSON (vLLM extra_args)."""

    form: str
    stanzas: int
    opening: str
    opening_is_whole_line: bool
    scheme: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "stanzas": self.stanzas,
            "opening": self.opening,
            "opening_is_whole_line": self.opening_is_whole_line,
            "scheme": self.scheme,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FormSpec:
        return cls(
            str(d["form"]), int(d["stanzas"]), str(d["opening"]), bool(d["opening_is_whole_line"]), d.get("scheme")
        )

    def extra_args(self) -> dict[str, str]:
        """What a vLLM request carries for the form processor (JSON text: `vllm_xargs` takes flat values)."""
        return {EXTRA_ARG: json.dumps(self.as_dict(), ensure_ascii=False)}


@dataclass(frozen=True)
class Next:
    """What the next token may be. Hashable: vocabularies cache a mask per distinct value."""

    syllable: bool = False
    tone: ToneClass | None = None  # the syllable's tone class, when fixed
    rhyme: tuple[str, ToneClass] | None = None  # the rhyme key it must have
    # Syllables it must not be (prosody.identity: spelling and tone): the group's earlier members,
    # in every spelling ("nhòa" excludes "nhoà" too: the checker counts a repeat as no rhyme).
    exclude: frozenset[tuple] = frozenset()
    leads: int = 0  # it opens a rhyme group of this many members: its key needs that many syllables
    comma: bool = False
    end_punct: bool = False
    newline: bool = False
    end: bool = False


class FormAutomaton:
    """The state of one poem being written; `next()` and `advance()` drive it."""

    def __init__(self, spec: FormSpec):
        self.spec = spec
        self.form: Form = get_form(spec.form)
        self.scheme = self.form.scheme_or_default(spec.scheme)
        self.n_lines = spec.stanzas * LINES_PER_STANZA
        self.line = 0
        self.count = 0  # syllables written on the current line
        self.after_punct = False
        self.line_closed = False  # end punctuation written: only the line break or the end follow
        self.finished = False
        self.laws = set(range(len(self.form.laws)))  # luật still possible
        self.patterns: set[tuple[int, int]] = set()  # (law, pattern) alive on the current line
        self.written: dict[tuple[int, int], str] = {}  # rhyme member -> syllable written there
        self.group_of: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for group in self.form.rhyme_groups(self.n_lines, self.scheme):
            for member in group:
                self.group_of[member] = group
        self._start_line()
        self._feed_opening()

    # -- the opening is the user's: read it without judging it ----------------------------------
    def _feed_opening(self) -> None:
        for piece in pieces(self.spec.opening):
            if is_word(piece):
                if self.count < self.form.length_of(self.line)[1]:
                    self._write_syllable(piece.lower())
            else:
                self.after_punct = True
        if self.spec.opening_is_whole_line:
            self._new_line()

    # -- what may come next ---------------------------------------------------------------------
    def next(self) -> Next:
        if self.finished:
            return Next(end=True)  # nothing more: only the end token is harmless
        lo, hi = self.form.length_of(self.line)
        last_line = self.line == self.n_lines - 1
        can_close = self.count >= lo
        close = dict(newline=can_close and not last_line, end=can_close and last_line)
        if self.line_closed:
            return Next(**close)
        syllable_ok = self.count < hi
        punct = dict(
            comma=self.count > 0 and not self.after_punct and self.count < hi,
            end_punct=can_close and not self.after_punct,
        )
        if not syllable_ok:
            return Next(**close, **punct)
        pos = self.count + 1
        tone = self._tone_at(pos)
        rhyme, exclude, leads = None, frozenset(), 0
        group = self.group_of.get((self.line, pos))
        if group is not None:
            earlier = [self.written[m] for m in group if m in self.written]
            if earlier:
                rhyme = rhyme_key(earlier[0])
                exclude = frozenset(identity(w) for w in earlier)
                tone = rhyme[1]  # the rhyme wins over a tone rule (only the user's opening can disagree)
            else:
                leads = len(group)
        return Next(syllable=True, tone=tone, rhyme=rhyme, exclude=exclude, leads=leads, **close, **punct)

    def _tone_at(self, pos: int) -> ToneClass | None:
        if not self.patterns:
            return None
        classes = set()
        for law, k in self.patterns:
            fixed = dict(self._line_patterns(law)[k]).get(pos)
            if fixed is None:
                return None
            classes.add(fixed)
        return classes.pop() if len(classes) == 1 else None

    # -- moving on ----------------------------------------------------------------------------
    def advance(self, kind: str, text: str = "") -> bool:
        """Take one token (its kind and, for a syllable, its lower-case text); False if the form forbids it."""
        allowed = self.next()
        if kind == SYLLABLE:
            if not allowed.syllable or (allowed.tone is not None and tone_class(text) != allowed.tone):
                return False
            if allowed.rhyme is not None and (rhyme_key(text) != allowed.rhyme or identity(text) in allowed.exclude):
                return False
            self._write_syllable(text)
        elif kind == PUNCT:
            mid = text in MID_LINE_PUNCTUATION and allowed.comma
            if not (mid or allowed.end_punct):
                return False
            self.after_punct = True
            self.line_closed = not mid
        elif kind == NEWLINE:
            if not allowed.newline:
                return False
            self._new_line()
        elif kind == END:
            if not allowed.end:
                return False
            self.finished = True
        else:
            return False
        return True

    def _write_syllable(self, syllable: str) -> None:
        self.count += 1
        self.after_punct = False
        member = (self.line, self.count)
        if member in self.group_of:
            self.written[member] = syllable
        if self.patterns:
            cls = tone_class(syllable)
            alive = {
                (law, k) for law, k in self.patterns if dict(self._line_patterns(law)[k]).get(self.count, cls) == cls
            }
            # Nothing alive: only the user's own words get here. Their syllable is
            # not judged; the patterns still rule the positions the model writes.
            if alive:
                self.patterns = alive
                self.laws = {law for law, _ in alive}

    def _new_line(self) -> None:
        self.line += 1
        self._start_line()

    def _start_line(self) -> None:
        self.count = 0
        self.after_punct = self.line_closed = False
        if self.line >= self.n_lines:
            self.patterns = set()
            return
        self.patterns = {(law, k) for law in self.laws for k in range(len(self._line_patterns(law)))}
        # A rhyme this line must follow fixes a tone class there: keep only the patterns that
        # agree, so no syllable written before it can lead into a dead end (8 chữ: B T B vs T B T).
        for pos in range(1, self.form.length_of(self.line)[1] + 1):
            group = self.group_of.get((self.line, pos))
            earlier = [self.written[m] for m in group or () if m in self.written]
            if earlier:
                cls = tone_class(earlier[0])
                agree = {(law, k) for law, k in self.patterns if dict(self._line_patterns(law)[k]).get(pos, cls) == cls}
                self.patterns = agree or self.patterns

    def _line_patterns(self, law: int):
        return self.form.line_patterns(self.form.laws[law], self.line, self.scheme)

    @property
    def done(self) -> bool:
        return self.finished

    def fork(self) -> FormAutomaton:
        """An independent copy (beam search keeps one per beam)."""
        other = object.__new__(FormAutomaton)
        other.__dict__.update(self.__dict__)
        other.laws, other.patterns, other.written = set(self.laws), set(self.patterns), dict(self.written)
        return other

    def max_tokens(self) -> int:
        """An upper bound on the tokens still to write: every syllable, a punctuation mark each, breaks, end."""
        left = sum(self.form.length_of(i)[1] for i in range(self.line, self.n_lines)) - self.count
        return 2 * left + (self.n_lines - self.line) + 1
