"""Shared fixtures: a tiny real model directory (built once per test session)."""

from __future__ import annotations

import pytest

from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random GPT-2 with the syllable tokenizer (the only kind the engine serves) and our prompt format."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-a", version="tiny-a", seed=0, kind="syllable")


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory):
    """A second tiny model with another version, for model swaps."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-b", version="tiny-b", seed=1, kind="syllable")


@pytest.fixture(scope="session")
def tiny_bpe_model_dir(tmp_path_factory):
    """A tiny random GPT-2 with a byte-level BPE: a model the engine must refuse."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bpe", version="tiny-bpe", seed=0, kind="bpe")
