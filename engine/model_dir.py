"""A model directory that describes itself.

    models/<version>/
      config.json, model.safetensors (or shards), tokenizer files  (transformers)
      generation_config.json   the sampling defaults chosen by the training sweep
      tho_model.json           {"version": ..., "prompt_format": 1, ...}
      README.md                the model card

Everything loads from local files only: no model hub is reachable at run time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.prompt import PROMPT_FORMAT_VERSION
from engine.settings import generation_defaults_from_config
from engine.syllable_text import is_syllable_tokenizer

METADATA_FILE = "tho_model.json"


class ModelDirError(RuntimeError):
    """The model directory is missing or incomplete."""


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    version: str
    defaults: dict[str, Any] = field(default_factory=dict)  # SamplingSettings names
    metadata: dict[str, Any] = field(default_factory=dict)
    # One token per syllable (a WordLevel tokenizer.json): the only kind the engine
    # serves (require_syllable_level); training tools read other tokenizers too.
    syllable_level: bool = False


def read_model_info(path: str | Path) -> ModelInfo:
    path = Path(path).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise ModelDirError(f"{path} is not a model directory (no config.json)")
    metadata: dict[str, Any] = {}
    if (path / METADATA_FILE).is_file():
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    fmt = metadata.get("prompt_format", PROMPT_FORMAT_VERSION)
    if fmt != PROMPT_FORMAT_VERSION:
        raise ModelDirError(f"{path} uses prompt format {fmt}; this engine speaks {PROMPT_FORMAT_VERSION}")
    defaults: dict[str, Any] = {}
    if (path / "generation_config.json").is_file():
        gen = json.loads((path / "generation_config.json").read_text(encoding="utf-8"))
        defaults = generation_defaults_from_config(gen)
    syllable_level = False
    if (path / "tokenizer.json").is_file():
        syllable_level = is_syllable_tokenizer(json.loads((path / "tokenizer.json").read_text(encoding="utf-8")))
    return ModelInfo(
        path=path,
        version=str(metadata.get("version") or path.name),
        defaults=defaults,
        metadata=metadata,
        syllable_level=syllable_level,
    )


def require_syllable_level(info: ModelInfo) -> None:
    """Refuse a model the form automaton cannot drive: its tokens must be whole syllables."""
    if not info.syllable_level:
        raise ModelDirError(
            f"{info.path} is not a syllable-level model (its tokenizer.json is not one token per syllable); "
            "train one with `python -m training tokenizer` and `python -m training train`"
        )


def write_metadata(path: str | Path, version: str, **extra: Any) -> None:
    data = {"version": version, "prompt_format": PROMPT_FORMAT_VERSION, **extra}
    (Path(path) / METADATA_FILE).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
