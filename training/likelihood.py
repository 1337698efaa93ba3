"""How likely a model finds a poem: the one scoring code of evaluation, the sweep and the feedback gate.

Cross-entropy per syllable compares models whose tokenizers differ (a
syllable-level model and a byte-level BPE): the nats a model spends on a
poem's text after its form tag (every line, the line breaks and the end
token) divided by the number of syllables and line breaks in it. It is
measured on test-split poems written only with Vietnamese syllables and plain
punctuation, so every model reads the same text.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from engine.prompt import FORM_TAGS, LINE_SEPARATOR, format_poem
from engine.prosody import is_vietnamese_syllable, syllables
from engine.syllable_text import is_punctuation, is_word, pieces
from training.corpus import CleanPoem, chunks
from training.dataset import encode


class PoemScorer:
    """A model directory's log-likelihood of poems (and of lines given the ones before them)."""

    def __init__(self, model_dir: str | Path):
        from transformers import AutoTokenizer, GPT2LMHeadModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = GPT2LMHeadModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32).eval()
        self.max_positions = self.model.config.n_positions

    @torch.no_grad()
    def nll(self, form: str, lines: list[str], given: int = 1) -> tuple[float, int]:
        """Summed negative log-likelihood (nats) of lines[given:] and the end token, given the tag and
        lines[:given]; and the number of tokens scored."""
        prefix_text = FORM_TAGS[form] + "".join(line + LINE_SEPARATOR for line in lines[:given])
        prefix, ids = encode([prefix_text, format_poem(form, list(lines))], self.tokenizer)
        ids = ids[: self.max_positions]
        start = len(prefix)
        if start >= len(ids):
            return 0.0, 0
        x = torch.tensor([ids])
        logits = self.model(input_ids=x).logits[0, start - 1 : -1]
        loss = torch.nn.functional.cross_entropy(logits.float(), x[0, start:], reduction="sum")
        return float(loss), len(ids) - start

    def perplexity(self, items: list[tuple[str, list[str]]]) -> float:
        """Per-token perplexity of lines after the first (the sweep's fluency measure)."""
        total, count = 0.0, 0
        for form, lines in items:
            n, c = self.nll(form, lines)
            total, count = total + n, count + c
        return math.exp(total / count) if count else float("nan")


def plain(lines: tuple[str, ...] | list[str]) -> bool:
    """Written only with Vietnamese syllables and plain punctuation (no quotes, digits, foreign words)."""
    for line in lines:
        for piece in pieces(line):
            if not (is_vietnamese_syllable(piece) if is_word(piece) else is_punctuation(piece)):
                return False
    return True


EVAL_LINES = 8  # two stanzas: short enough for every model's context, whatever its tokenizer


def eval_poems(test: list[CleanPoem], limit: int = 600) -> list[tuple[str, list[str]]]:
    """The first `limit` stanza-aligned chunks (two stanzas at most) of plain test-split poems."""
    out = []
    for poem in test:
        if not plain(poem.lines):
            continue
        out += [(form, lines[:EVAL_LINES]) for form, lines in chunks(poem)]
        if len(out) >= limit:
            break
    return out[:limit]


def cross_entropy_per_syllable(scorer: PoemScorer, poems: list[tuple[str, list[str]]]) -> dict:
    """Nats per syllable-or-line-break over whole poems (see the module docstring)."""
    nats, units, tokens = 0.0, 0, 0
    for form, lines in poems:
        n, t = scorer.nll(form, lines, given=0)
        nats += n
        tokens += t
        units += sum(len(syllables(line)) for line in lines) + len(lines) - 1
    return {
        "nats_per_syllable": round(nats / max(1, units), 4),
        "poems": len(poems),
        "syllables": units,
        "tokens": tokens,
        "nats_per_token": round(nats / max(1, tokens), 4),
    }


@torch.no_grad()
def end_probabilities(scorer: PoemScorer, poems: list[tuple[str, list[str]]]) -> dict[str, list[float]]:
    """Per form, the mean probability the model gives the end token right after line 1, 2, ... of real
    poems (read from the form tag, as the engine prompts). Poems end only after whole stanzas, so after
    lines 1-3 it should be near 0: what it is there is about how often free decoding stops a stanza
    short (the raw model's probability: the sampling settings reshape it a little)."""
    from engine.prompt import END_OF_POEM

    end = scorer.tokenizer.convert_tokens_to_ids(END_OF_POEM)
    (newline,) = encode([LINE_SEPARATOR], scorer.tokenizer)[0][-1:]
    sums: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for form, lines in poems:
        ids = encode([format_poem(form, list(lines))], scorer.tokenizer)[0][: scorer.max_positions]
        x = torch.tensor([ids])
        p_end = scorer.model(input_ids=x).logits[0].float().softmax(-1)[:, end]
        line_ends = [i - 1 for i, t in enumerate(ids) if i and t in (newline, end)]  # the token before each
        s, c = sums.setdefault(form, []), counts.setdefault(form, [])
        for k, i in enumerate(line_ends):
            if k == len(s):
                s.append(0.0)
                c.append(0)
            s[k] += float(p_end[i])
            c[k] += 1
    return {form: [round(v / n, 6) for v, n in zip(sums[form], counts[form], strict=True)] for form in sums}
