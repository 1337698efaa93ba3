"""GPT-2 configurations by name, building a model for a tokenizer, and fine-tuning a local checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from engine.prompt import END_OF_POEM, SPECIAL_TOKENS

# name -> (layers, heads, embedding width, context length)
CONFIGS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 2, 64, 512),  # tests: builds and trains in seconds
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
    """A local GPT-2 checkpoint and its tokenizer, with the prompt format's tokens added.

    The checkpoint keeps its own vocabulary (its embeddings only make sense
    with it); the form tags and the end token are added where missing and the
    embedding matrix grows to match, new rows initialised to the mean row.
    """
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = GPT2LMHeadModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    tokenizer.add_special_tokens(
        {"eos_token": END_OF_POEM, "additional_special_tokens": [t for t in SPECIAL_TOKENS if t != END_OF_POEM]}
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = END_OF_POEM
    old = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > old:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    eos = tokenizer.convert_tokens_to_ids(END_OF_POEM)
    model.config.eos_token_id = model.config.bos_token_id = model.config.pad_token_id = eos
    if missing:
        print(f"added {len(missing)} tokens to the checkpoint's vocabulary: {missing}")
    return model, tokenizer
