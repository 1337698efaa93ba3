"""Byte-level BPE tokenizer trained on the poems, with the prompt format's special tokens."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from engine.prompt import END_OF_POEM, SPECIAL_TOKENS


def train_tokenizer(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a GPT-2 style byte-level BPE on `texts` (already in the prompt format)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=END_OF_POEM, eos_token=END_OF_POEM,
                                   unk_token=END_OF_POEM, pad_token=END_OF_POEM,
                                   additional_special_tokens=[t for t in SPECIAL_TOKENS if t != END_OF_POEM],
                                   clean_up_tokenization_spaces=False)


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    tokenizer.save_pretrained(str(out_dir))


def train_from_split(train_path: str | Path, out_dir: str | Path, vocab_size: int = 8000,
                     min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """`python -m training tokenizer`: BPE on the training split's examples, saved to out_dir."""
    from training.corpus import read_split
    from training.dataset import example_texts

    tokenizer = train_tokenizer(example_texts(read_split(train_path)), vocab_size, min_frequency)
    save_tokenizer(tokenizer, out_dir)
    print(f"tokenizer: {len(tokenizer)} tokens -> {out_dir}")
    return tokenizer
