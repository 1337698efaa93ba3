"""A syllable vocabulary as boolean masks over token ids, for the form automaton.

Built once per model from its tokenizer.json: which ids are syllables, their
tone class and rhyme key, the punctuation, the line break and the end token.
`mask(next)` turns the automaton's `Next` into the set of token ids allowed
next: a few boolean operations on precomputed masks, cached per distinct
`Next` in a bounded table (poems in one form ask the same few questions).
The unknown token and the form tags are never allowed.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch

from engine.automaton import END, NEWLINE, PUNCT, SYLLABLE, Next
from engine.prompt import END_OF_POEM, LINE_SEPARATOR
from engine.prosody import ToneClass, identity, is_vietnamese_syllable, rhyme_key, tone_class
from engine.syllable_text import PUNCTUATION, is_punctuation

MASK_CACHE_SIZE = 2048  # distinct `Next` values kept; each mask is one byte per token


class SyllableVocab:
    def __init__(self, tokens: dict[int, str], vocab_size: int, device: str | torch.device = "cpu"):
        """`tokens`: id -> token string as in tokenizer.json; `vocab_size`: the model's logits width;
        `device`: where the masks `mask()` returns live (the logits' device: no copy per step)."""
        self.size = vocab_size
        self.device = torch.device(device)
        self.kind: dict[int, tuple[str, str]] = {}
        self.syllable = torch.zeros(vocab_size, dtype=torch.bool)
        self.tone = {
            ToneClass.BANG: torch.zeros(vocab_size, dtype=torch.bool),
            ToneClass.TRAC: torch.zeros(vocab_size, dtype=torch.bool),
        }
        self.end_punct = torch.zeros(vocab_size, dtype=torch.bool)
        self.comma_id = self.newline_id = self.eos_id = -1
        key_ids: dict[tuple, list[int]] = {}
        key_words: dict[tuple, set[str]] = {}
        self.ids_of: dict[tuple, list[int]] = {}  # prosody.identity -> every token spelling it
        for i, token in tokens.items():
            if i >= vocab_size:
                continue
            if token == END_OF_POEM:
                self.eos_id = i
                self.kind[i] = (END, "")
            elif token == LINE_SEPARATOR:
                self.newline_id = i
                self.kind[i] = (NEWLINE, "")
            elif token.endswith(" ") and is_punctuation(token[:-1]):
                # Read every run of marks the corpus uses; write only the plain ones.
                self.end_punct[i] = token[:-1] in PUNCTUATION
                self.kind[i] = (PUNCT, token[:-1])
                if token[:-1] == ",":
                    self.comma_id = i
            elif token.endswith(" ") and is_vietnamese_syllable(token[:-1]):
                word = token[:-1].lower()
                self.kind[i] = (SYLLABLE, word)
                self.syllable[i] = True
                self.tone[tone_class(word)][i] = True
                key = rhyme_key(word)
                key_ids.setdefault(key, []).append(i)
                key_words.setdefault(key, set()).add(word)
                self.ids_of.setdefault(identity(word), []).append(i)
        if min(self.eos_id, self.newline_id) < 0:
            raise ValueError("not a syllable vocabulary: no end token or line break")
        self.key_ids = {k: torch.tensor(v) for k, v in key_ids.items()}
        self.key_size = {k: len(v) for k, v in key_words.items()}
        self._leads: dict[int, torch.Tensor] = {}
        self._cache: OrderedDict[Next, torch.Tensor] = OrderedDict()

    @classmethod
    def from_model_dir(
        cls, path: str | Path, vocab_size: int | None = None, device: str | torch.device = "cpu"
    ) -> SyllableVocab:
        data = json.loads((Path(path) / "tokenizer.json").read_text(encoding="utf-8"))
        tokens = {i: t for t, i in data["model"]["vocab"].items()}
        tokens.update({a["id"]: a["content"] for a in data.get("added_tokens", [])})
        return cls(tokens, vocab_size or max(tokens) + 1, device)

    def describe(self, token_id: int) -> tuple[str, str]:
        """(kind, lower-case text) of a token, for FormAutomaton.advance; unknown ids are ("other", "")."""
        return self.kind.get(int(token_id), ("other", ""))

    def mask(self, nxt: Next) -> torch.Tensor:
        """The ids allowed next (a cached tensor: do not modify it)."""
        cached = self._cache.get(nxt)
        if cached is not None:
            self._cache.move_to_end(nxt)
            return cached
        m = self._build(nxt).to(self.device)
        self._cache[nxt] = m
        if len(self._cache) > MASK_CACHE_SIZE:
            self._cache.popitem(last=False)
        return m

    def _build(self, nxt: Next) -> torch.Tensor:
        m = torch.zeros(self.size, dtype=torch.bool)
        if nxt.syllable:
            m |= self._syllables(nxt)
        if nxt.comma and self.comma_id >= 0:
            m[self.comma_id] = True
        if nxt.end_punct:
            m |= self.end_punct
        if nxt.newline:
            m[self.newline_id] = True
        if nxt.end:
            m[self.eos_id] = True
        return m

    def _syllables(self, nxt: Next) -> torch.Tensor:
        allowed = self.syllable if nxt.tone is None else self.tone[nxt.tone]
        if nxt.rhyme is not None:
            rhyming = torch.zeros(self.size, dtype=torch.bool)
            ids = self.key_ids.get(nxt.rhyme)
            if ids is not None:
                rhyming[ids] = True
            for same in nxt.exclude:
                rhyming[self.ids_of.get(same, [])] = False
            # A key no syllable of ours has (set by an unusual word of the user's): keep the tone only.
            return rhyming if rhyming.any() else allowed
        if nxt.leads > 1:
            leading = allowed & self._leads_ok(nxt.leads)
            if leading.any():
                return leading
        return allowed

    def _leads_ok(self, members: int) -> torch.Tensor:
        """Syllables whose rhyme key has at least `members` distinct syllables in the vocabulary."""
        if members not in self._leads:
            ok = torch.zeros(self.size, dtype=torch.bool)
            for key, ids in self.key_ids.items():
                if self.key_size[key] >= members:
                    ok[ids] = True
            self._leads[members] = ok
        return self._leads[members]
