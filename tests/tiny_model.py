"""Build a tiny GPT-2 model directory for tests, on the fly, from a few poems.

The poems come from the shared corpus when it is there, else from the lines
below; the model is random or trained for a few steps, enough for the engine,
the bots and the backends to run on a real model directory.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch

from engine.forms import label_form
from engine.model_dir import write_metadata
from engine.prompt import END_OF_POEM, SPECIAL_TOKENS, format_poem
from training.corpus import DEFAULT_CORPUS, read_rows
from training.model import build_model
from training.tokenizer import build_syllable_tokenizer, with_special_tokens

FALLBACK_POEMS = [
    ["Mùa thu lá vàng rơi", "Gió heo may về qua", "Em đi trên phố vắng", "Nhớ mãi một người xa"],
    [
        "Trăm năm trong cõi người ta",
        "Chữ tài chữ mệnh khéo là ghét nhau",
        "Trải qua một cuộc bể dâu",
        "Những điều trông thấy mà đau đớn lòng",
    ],
    [
        "Chiều nay em đứng bên dòng sông vắng",
        "Nghe tiếng chuông chùa vọng giữa hoàng hôn",
        "Gió thoảng đưa hương lúa chín thơm nồng",
        "Lòng bỗng thấy nhớ quê nhà xa xăm",
    ],
]


def sample_poems(n: int = 300) -> list[list[str]]:
    if Path(DEFAULT_CORPUS).is_file():
        return [r["lines"] for r in itertools.islice(read_rows(DEFAULT_CORPUS), n)]
    return FALLBACK_POEMS * (n // len(FALLBACK_POEMS))


def build_tiny_model(out_dir: Path, version: str = "tiny-test", seed: int = 0, kind: str = "syllable") -> Path:
    """A tiny random GPT-2: `kind` "syllable" (one token per syllable, what the engine serves)
    or "bpe" (a byte-level BPE, a model the engine must refuse)."""
    poems = sample_poems()
    if kind == "syllable":
        tokenizer, _ = build_syllable_tokenizer(poems, min_count=1)
    else:
        tokenizer = byte_level_bpe([format_poem(label_form(lines) or "tudo", lines) for lines in poems])
    torch.manual_seed(seed)
    model = build_model("tiny", tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_metadata(out_dir, version)
    return out_dir


def byte_level_bpe(texts: list[str], vocab_size: int = 600):
    """A GPT-2 style byte-level BPE trained on `texts`: tokens that are pieces of words, not syllables."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return with_special_tokens(tok, unk_token=END_OF_POEM)
