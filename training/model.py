"""GPT-2 configurations by name, building a model for a tokenizer, and loading one to go on training."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from engine.model_dir import read_model_info, require_syllable_level

# name -> (layers, heads, embedding width, context length)
CONFIGS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 2, 64, 512),  # tests: builds and trains in seconds
    "mini": (3, 3, 192, 320),  # the scaling table's smaller point (README): 2.6M parameters with the 6.5k vocabulary
    "cpu": (4, 4, 256, 320),  # what a 2-core CPU trains in an hour: ~5M parameters with an 8k vocabulary
    "small": (6, 6, 384, 512),  # CPU serving: ~14M parameters with an 8k vocabulary
    "gpu": (8, 8, 512, 320),  # the GPU recipe (make model-gpu): ~28M parameters, 57 MB in fp16, small enough to commit
    "base": (12, 12, 768, 512),  # the GPT-2 "small" shape (too big to commit: 170 MB in fp16)
}


def gpt2_config(name: str, tokenizer: PreTrainedTokenizerFast) -> GPT2Config:
    layers, heads, width, context = CONFIGS[name]
    eos = tokenizer.eos_token_id
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_layer=layers,
        n_head=heads,
        n_embd=width,
        n_positions=context,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )


def build_model(name: str, tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    return GPT2LMHeadModel(gpt2_config(name, tokenizer))


def load_for_finetuning(path: str | Path) -> tuple[GPT2LMHeadModel, PreTrainedTokenizerFast]:
    """A model directory to go on from (`--init-from`): its weights and its own tokenizer.

    Only a syllable-level one: a model over any other tokenizer could be trained but never
    served (the engine refuses it), so it is refused here, before any minute is spent.
    """
    require_syllable_level(read_model_info(path))
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = GPT2LMHeadModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    return model, tokenizer
