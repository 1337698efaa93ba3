"""How sure the model was of each syllable of a poem, and where it looked.

Users ask "why this word?" (`/giaithich`). A syllable-level model answers it
cheaply: every syllable is one token, so one forward pass over the finished
poem gives, for each syllable, the probability the model gave it at the step
that wrote it, and the last layer's attention from that step to the earlier
syllables.

The work runs on a CPU copy of the same weights that `Explainer` loads itself,
so it is the same whatever backend serves the poems (transformers, vLLM in
process, a remote vLLM server): the serving path is never touched, and a GPU
engine keeps its memory. The copy is held for one model at a time.

The probabilities are those of the raw model. A poem was decoded under the
form's automaton (and the user's temperature, top-k, ...), which may have
ruled out what the model liked best, so a low figure can mean "the form forced
this word" as much as "the model was unsure".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2LMHeadModel, PreTrainedTokenizerBase

from engine.model_dir import read_model_info, require_syllable_level
from engine.prompt import FORM_TAGS, LINE_SEPARATOR
from engine.syllable_text import SyllableCodec, codec_for_model, is_word, pieces


@dataclass(frozen=True)
class SyllableScore:
    text: str  # as the poem line shows it ("Gió", not the vocabulary's "gió")
    probability: float  # what the model gave this syllable at the step that wrote it
    generated: bool  # False for the user's opening words


@dataclass(frozen=True)
class Explanation:
    lines: tuple[tuple[SyllableScore, ...], ...]
    model_version: str
    # Row s (syllables numbered across the poem from 0) holds s weights: the last
    # layer's attention, mean over heads, from the step that wrote syllable s to
    # each earlier syllable, renormalised to sum to 1 over them.
    _attention: tuple[tuple[float, ...], ...] = field(repr=False)

    def attention(self, line: int, index: int) -> tuple[tuple[float, ...], ...]:
        """Where the model looked when it wrote syllable `index` of line `line` (both 1-based).

        For every line, a weight per syllable: the share of attention on that
        earlier syllable (the weights sum to 1), 0.0 on the syllable itself and
        on later ones. All zeros for the poem's first syllable (nothing before it).
        """
        flat = self._flat_index(line, index)
        row = self._attention[flat]
        out: list[tuple[float, ...]] = []
        start = 0
        for scores in self.lines:
            out.append(tuple(row[start + i] if start + i < flat else 0.0 for i in range(len(scores))))
            start += len(scores)
        return tuple(out)

    @property
    def mean_probability(self) -> float | None:
        """The mean probability of the generated syllables (None when the poem is all opening)."""
        generated = [s.probability for line in self.lines for s in line if s.generated]
        return sum(generated) / len(generated) if generated else None

    def least_sure(self, k: int = 3) -> list[tuple[int, int, SyllableScore]]:
        """The k generated syllables with the lowest probability, as (line, index, score), 1-based, least sure first."""
        located = [
            (li, si, score)
            for li, line in enumerate(self.lines, start=1)
            for si, score in enumerate(line, start=1)
            if score.generated
        ]
        return sorted(located, key=lambda item: item[2].probability)[:k]

    def _flat_index(self, line: int, index: int) -> int:
        if not (1 <= line <= len(self.lines)) or not (1 <= index <= len(self.lines[line - 1])):
            raise IndexError(f"no syllable {index} on line {line} (the poem has {len(self.lines)} lines)")
        return sum(len(scores) for scores in self.lines[: line - 1]) + index - 1


@dataclass(frozen=True)
class _Loaded:
    path: Path
    version: str
    model: GPT2LMHeadModel
    tokenizer: PreTrainedTokenizerBase
    codec: SyllableCodec


@dataclass(frozen=True)
class _Slot:
    """One displayed syllable and the token that holds it."""

    line: int  # 0-based
    text: str
    position: int  # its token's position in the model text


class Explainer:
    """Explains poems with a CPU copy of a model; holds one model at a time (a new directory replaces it)."""

    def __init__(self) -> None:
        self._loaded: _Loaded | None = None
        # One lock for loading and for the forward pass: a swap to another model
        # never happens under a running explanation, and the CPU does one at a time.
        self._lock = threading.Lock()

    async def explain(self, model_dir: str | Path, form: str, lines: Sequence[str], opening: str) -> Explanation:
        """Scores for the poem `lines` of form `form` that opened with the user's `opening`."""
        return await asyncio.to_thread(self._explain, Path(model_dir), form, tuple(lines), opening)

    def _explain(self, model_dir: Path, form: str, lines: tuple[str, ...], opening: str) -> Explanation:
        if form not in FORM_TAGS:
            raise ValueError(f"unknown form {form!r}")
        with self._lock:
            loaded = self._load(model_dir)
            ids, slots = _align(loaded, form, lines)
            probabilities, attention = _forward(loaded.model, ids)
        return _build(loaded.version, lines, opening, slots, probabilities, attention)

    def _load(self, model_dir: Path) -> _Loaded:
        path = model_dir.expanduser().resolve()
        if self._loaded is not None and self._loaded.path == path:
            return self._loaded
        info = read_model_info(path)
        require_syllable_level(info)  # its tokens must be the poem's syllables
        # Drop the old copy before loading the new one: never two in memory.
        self._loaded = None
        self._loaded = _Loaded(
            path=path,
            version=info.version,
            # float32: checkpoints are stored in float16, which CPUs run slowly and
            # imprecisely; eager attention, because fused kernels return no weights.
            model=GPT2LMHeadModel.from_pretrained(
                path, local_files_only=True, attn_implementation="eager", dtype=torch.float32
            ).eval(),
            tokenizer=AutoTokenizer.from_pretrained(path, local_files_only=True),
            codec=codec_for_model(path),
        )
        return self._loaded


def _align(loaded: _Loaded, form: str, lines: tuple[str, ...]) -> tuple[list[int], list[_Slot]]:
    """The model text's token ids, and the token position of every displayed syllable."""
    text = FORM_TAGS[form] + loaded.codec.to_model(LINE_SEPARATOR.join(lines))
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    # The same walk as `SyllableCodec.to_model`: a word is always one token (an
    # unknown word the unknown token), punctuation one token when the vocabulary
    # has it, and dropped otherwise; a line break token between lines.
    slots: list[_Slot] = []
    position = 1  # after the form tag
    for li, line in enumerate(lines):
        for piece in pieces(line):
            if is_word(piece):
                slots.append(_Slot(li, piece, position))
                position += 1
            elif piece in loaded.codec.words:
                position += 1
        position += 1  # the line break (past the end after the last line)
    expected = position - 1
    if len(ids) != expected:
        raise RuntimeError(
            f"syllables and tokens do not align: {len(ids)} tokens for {expected} expected (text {text!r})"
        )
    max_positions = loaded.model.config.n_positions
    if len(ids) > max_positions:
        raise ValueError(f"the poem has {len(ids)} tokens; the model reads at most {max_positions}")
    return ids, slots


def _forward(model: GPT2LMHeadModel, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position t >= 1: the probability of token t given the tokens before it; the last layer's attention."""
    with torch.inference_mode():
        out = model(torch.tensor([ids]), output_attentions=True)
        log_probs = torch.log_softmax(out.logits[0, :-1].float(), dim=-1)
        chosen = log_probs.gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1).exp()
        probabilities = torch.cat([torch.ones(1), chosen])  # position 0, the form tag, is given
        attention = out.attentions[-1][0].float().mean(dim=0)  # (query, key), mean over heads
    return probabilities, attention


def _build(
    version: str,
    lines: tuple[str, ...],
    opening: str,
    slots: list[_Slot],
    probabilities: torch.Tensor,
    attention: torch.Tensor,
) -> Explanation:
    opening_words = len([p for p in pieces(opening) if is_word(p)])
    scores: list[list[SyllableScore]] = [[] for _ in lines]
    for slot in slots:
        generated = slot.line > 0 or len(scores[0]) >= opening_words
        scores[slot.line].append(SyllableScore(slot.text, float(probabilities[slot.position]), generated))
    return Explanation(
        lines=tuple(tuple(line) for line in scores),
        model_version=version,
        _attention=_attention_rows(slots, attention),
    )


def _attention_rows(slots: list[_Slot], attention: torch.Tensor) -> tuple[tuple[float, ...], ...]:
    """Row s: the attention from the step that wrote syllable s to each earlier syllable, summing to 1."""
    keys = torch.tensor([slot.position for slot in slots])
    rows = []
    for s, slot in enumerate(slots):
        # The query is the token BEFORE the syllable: the position whose output
        # predicted it, so its attention is what the model looked at when it chose
        # the syllable. (The syllable's own position looks ahead, to the next one.)
        # Every earlier syllable sits at or before that position, so none is hidden.
        weights = attention[slot.position - 1, keys[:s]]
        total = float(weights.sum())
        rows.append(tuple(float(w) / total for w in weights) if total > 0 else (0.0,) * s)
    return tuple(rows)
