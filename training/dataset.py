"""Training examples in the prompt format, tokenised and packed into fixed-length blocks."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from engine.forms import check, get_form, stanzas_of
from engine.prompt import format_poem
from engine.syllable_text import SyllableCodec, is_syllable_tokenizer
from training.corpus import CleanPoem, chunks


def example_texts(poems: list[CleanPoem]) -> Iterator[str]:
    """Every stanza-aligned chunk of every poem, written with engine.prompt.format_poem."""
    for poem in poems:
        for form, lines in chunks(poem):
            yield format_poem(form, lines)


def rhyming_stanzas(poems: list[CleanPoem]) -> Iterator[str]:
    """Every stanza of a rhyming form that keeps its form's rhyme scheme (engine.forms.check, the default
    scheme), as a one-stanza example. Its line lengths are the form's already: `chunks` labels by them.

    `train --rhyming-stanzas K` adds K copies of these to the examples: few real 5 and 8 chữ stanzas
    rhyme as the form asks (a quarter of the pairs), so the model, left to itself, rarely does.
    """
    for poem in poems:
        for form, lines in chunks(poem):
            if get_form(form).weights["rhyme"] == 0:
                continue
            for stanza in stanzas_of(lines):
                if check(stanza, form, 1).rhyme == 1.0:
                    yield format_poem(form, stanza)


MIN_CHUNK_RHYME = 0.5  # the share of a chunk's rhyme pairs that must rhyme for `rhyming_chunks`


def rhyming_chunks(poems: list[CleanPoem], form: str) -> Iterator[str]:
    """Every training chunk (up to four stanzas, as `example_texts` writes it) of `form` in which at least
    half the rhyme pairs engine.forms.check scores rhyme (the default scheme; lục bát's fixed links).

    `train --rhyming-chunks 5chu=K` adds K copies of these. Unlike `rhyming_stanzas` they keep the
    poems' own lengths, so the model does not learn to stop after one stanza; and they weight the
    form's poems that rhyme, which the model, left to itself, does not imitate (README, "Rhyme in free
    decoding": `python -m training rhymes` on free 5 chữ poems against the training split).
    """
    for poem in poems:
        for chunk_form, lines in chunks(poem):
            if chunk_form == form and check(lines, form).rhyme >= MIN_CHUNK_RHYME:
                yield format_poem(form, lines)


def encode(texts: list[str], tokenizer, batch: int = 2000) -> list[list[int]]:
    """Token ids of prompt-format texts; a syllable tokenizer reads them in its canonical spelling."""
    codec = codec_for(tokenizer)
    if codec is not None:
        texts = [codec.to_model(t) for t in texts]
    out: list[list[int]] = []
    for i in range(0, len(texts), batch):
        out += tokenizer(texts[i : i + batch], add_special_tokens=False)["input_ids"]
    return out


def codec_for(tokenizer) -> SyllableCodec | None:
    """The syllable codec of a syllable-level tokenizer; None for a BPE."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not is_syllable_tokenizer(json.loads(backend.to_str())):
        return None
    return SyllableCodec(tokenizer.get_vocab())


# How `pack` lays out rows, as tho_model.json records it ("packing"): the model card says which runs read
# each poem from its own form tag at position 0 (runs before this field numbered positions from the row start).
PACKING = "poem positions"


@dataclass(frozen=True)
class Rows:
    """Packed training rows of block+1 tokens and each token's position within its own example."""

    ids: torch.Tensor  # (rows, block + 1)
    positions: torch.Tensor  # (rows, block + 1)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index) -> Rows:
        return Rows(self.ids[index], self.positions[index])

    def to(self, device) -> Rows:
        return Rows(self.ids.to(device), self.positions.to(device))


def pack(examples: list[list[int]], block: int, seed: int, max_position: int) -> Rows:
    """Shuffle the examples, concatenate them and cut into rows of block+1 tokens.

    Each example starts with its form tag and ends with the end token, so the
    model learns where poems begin and end; a poem cut at a block edge goes on
    in the next row (GPT-2 style packing, no padding wasted).

    Every token keeps its position within its own example, as the engine's
    prompt has it (the form tag at 0): the model reads a poem only from its
    own tokens (`loss` passes the positions, and transformers' packed-sequence
    mask keeps each example from attending to the one before), and a row that
    starts mid-poem carries on with the poem's positions. Rows numbered from
    the row start taught the model that a poem may start anywhere, so it never
    learned where its 4th line ends: free poems stopped after 2-3 lines.

    An example longer than the model's context (`max_position` + 1 tokens,
    none in the corpus at the default sizes) is cut there: its positions must
    go on counting, since transformers starts a new sequence wherever a
    position does not follow the one before it.
    """
    examples = [e[: max_position + 1] for e in examples]
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    stream = [t for i in order for t in examples[i]]
    place = [p for i in order for p in range(len(examples[i]))]
    n = (len(stream) - 1) // block
    x = torch.tensor(stream[: n * block + 1], dtype=torch.long)
    pos = torch.tensor(place[: n * block + 1], dtype=torch.long)
    if n < 1:  # fewer tokens than one row: no rows (callers with little data pick a shorter block)
        return Rows(torch.empty((0, block + 1), dtype=torch.long), torch.empty((0, block + 1), dtype=torch.long))
    rows = [slice(i * block, i * block + block + 1) for i in range(n)]
    return Rows(torch.stack([x[r] for r in rows]), torch.stack([pos[r] for r in rows]))


def loss(model, rows: Rows, reduction: str = "mean") -> torch.Tensor:
    """Next-token cross-entropy of packed rows (mean or sum), each example read on its own (see `pack`)."""
    # use_cache=False: with a cache transformers does not build the packed-sequence mask.
    logits = model(input_ids=rows.ids[:, :-1], position_ids=rows.positions[:, :-1], use_cache=False).logits
    return torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), rows.ids[:, 1:].reshape(-1), reduction=reduction
    )
