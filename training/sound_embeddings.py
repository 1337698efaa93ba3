"""Rhyme and tone vectors added to the syllable embeddings while training (`train --sound-embeddings`).

With one token per syllable the model sees "hoa" and "xa" as two unrelated ids:
which of 6.5k syllables rhyme it can only learn from seeing each pair rhyme,
and free decoding rhymed far less than real poems (5 chữ 0.03 against 0.33,
7 chữ 0.08 against 0.74: models/*/eval.md). Here a syllable's embedding is its
own vector plus one vector for its rhyme key (rhyme class and tone class,
engine.prosody.rhyme_key, the checker's own notion of rhyming) and one for its
tone. Every occurrence of any syllable of a rhyme class then trains the shared
vector, and because GPT-2 ties its output layer to the embeddings, the model
can raise a whole rhyme class at once when a line has to end on it.

The sum is a function of the weights (a torch parametrization), so training,
validation and `--resume` see it everywhere; `plain_state_dict` folds it into
GPT-2's single embedding matrix for saving. What is served is a plain GPT-2:
the engine, the vLLM backend and a later `--init-from` need nothing new.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from engine.automaton import SYLLABLE
from engine.prosody import Tone, tone
from engine.vocab_masks import SyllableVocab

PARAMETRIZED = ".parametrizations."  # how torch names a parametrized weight's parts in a state dict
TONE_INDEX = {t: n for n, t in enumerate(Tone, start=1)}  # the six thanh; 0: not a syllable


class SoundSum(nn.Module):
    """weight -> weight + rhyme-key vector + tone vector, per token row (0 vectors for non-syllables)."""

    def __init__(self, key_of: torch.Tensor, tone_of: torch.Tensor, n_keys: int, n_tones: int, width: int):
        super().__init__()
        self.register_buffer("key_of", key_of, persistent=True)
        self.register_buffer("tone_of", tone_of, persistent=True)
        # Index 0 is "no rhyme key / no tone" (line breaks, punctuation, special tokens): those rows get
        # nothing added and keep exactly their own vector. Zero start: the model begins as the one it came from.
        self.register_buffer("is_syllable", (key_of > 0).unsqueeze(1).float(), persistent=True)
        self.key = nn.Parameter(torch.zeros(n_keys + 1, width))
        self.tone = nn.Parameter(torch.zeros(n_tones + 1, width))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.key[self.key_of] + self.tone[self.tone_of]) * self.is_syllable.to(weight.dtype)


def sound_ids(tokenizer, vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """Per token id: its rhyme key's index and its tone's index (1-based; 0 for a non-syllable)."""
    tokens = {i: t for t, i in tokenizer.get_vocab().items()}
    vocab = SyllableVocab(tokens, vocab_size)
    key_of = torch.zeros(vocab_size, dtype=torch.long)
    for n, key in enumerate(sorted(vocab.key_ids, key=str), start=1):
        key_of[vocab.key_ids[key]] = n
    tone_of = torch.zeros(vocab_size, dtype=torch.long)
    for i, (kind, word) in vocab.kind.items():
        if kind == SYLLABLE:
            tone_of[i] = TONE_INDEX[tone(word)]
    return key_of, tone_of, len(vocab.key_ids), len(TONE_INDEX)


def add_sound_embeddings(model, tokenizer) -> SoundSum:
    """Parametrize the GPT-2's embedding matrix (and so its tied output layer) with rhyme and tone vectors."""
    wte = model.get_input_embeddings()
    key_of, tone_of, n_keys, n_tones = sound_ids(tokenizer, wte.weight.shape[0])
    sound = SoundSum(key_of, tone_of, n_keys, n_tones, wte.weight.shape[1]).to(wte.weight.device)
    parametrize.register_parametrization(wte, "weight", sound)
    head = model.get_output_embeddings()
    if head is not None and head.weight is wte.parametrizations.weight.original:
        # Tied weights: the output layer shares the raw matrix, so it gets the same sum (one module, one set
        # of vectors) and the logits are scored against what the inputs are embedded with.
        parametrize.register_parametrization(head, "weight", sound)
    return sound


def plain_state_dict(model) -> dict[str, torch.Tensor]:
    """The model's weights as a plain GPT-2 has them: the sums folded into the embedding (and tied head)."""
    state = {k: v for k, v in model.state_dict().items() if PARAMETRIZED not in k}
    if not parametrize.is_parametrized(model.get_input_embeddings()):
        return state
    with torch.no_grad():
        folded = model.get_input_embeddings().weight.detach().clone()
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            state[f"{name}.weight"] = folded
    return state
