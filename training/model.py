"""GPT-2 configurations by name, and building a model for a tokenizer."""

from __future__ import annotations

from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

# name -> (layers, heads, embedding width, context length)
CONFIGS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 2, 64, 512),  # tests: builds and trains in seconds
    "small": (6, 6, 384, 512),  # CPU serving: ~14M parameters with an 8k vocabulary
    "base": (12, 12, 768, 512),  # GPU training: the GPT-2 "small" shape
}


def gpt2_config(name: str, tokenizer: PreTrainedTokenizerFast) -> GPT2Config:
    layers, heads, width, context = CONFIGS[name]
    eos = tokenizer.eos_token_id
    return GPT2Config(vocab_size=len(tokenizer), n_layer=layers, n_head=heads, n_embd=width, n_positions=context,
                      bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)


def build_model(name: str, tokenizer: PreTrainedTokenizerFast) -> GPT2LMHeadModel:
    return GPT2LMHeadModel(gpt2_config(name, tokenizer))
