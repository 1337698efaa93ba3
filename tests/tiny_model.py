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
from engine.prompt import format_poem
from training.corpus import DEFAULT_CORPUS, read_rows
from training.model import build_model
from training.tokenizer import build_syllable_tokenizer, train_tokenizer

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


def build_tiny_model(
    out_dir: Path, version: str = "tiny-test", seed: int = 0, vocab_size: int = 600, kind: str = "bpe"
) -> Path:
    """A tiny random GPT-2: `kind` "bpe" (byte-level BPE, the character-level constraint path)
    or "syllable" (one token per syllable, the form automaton path)."""
    poems = sample_poems()
    if kind == "syllable":
        tokenizer, _ = build_syllable_tokenizer(poems, min_count=1)
    else:
        texts = [format_poem(label_form(lines) or "tudo", lines) for lines in poems]
        tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    torch.manual_seed(seed)
    model = build_model("tiny", tokenizer)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_metadata(out_dir, version)
    return out_dir
