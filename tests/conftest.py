"""Shared fixtures: a tiny real model directory (built once per test session)."""

from __future__ import annotations

import pytest

from tests.tiny_model import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random GPT-2 with the syllable tokenizer (the default path) and our prompt format."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-a", version="tiny-a", seed=0, kind="syllable")


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory):
    """A second tiny model with another version, for model swaps."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-b", version="tiny-b", seed=1, kind="syllable")


@pytest.fixture(scope="session")
def tiny_bpe_model_dir(tmp_path_factory):
    """A tiny random GPT-2 with a byte-level BPE: the character-level constraint path."""
    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bpe", version="tiny-bpe", seed=0, kind="bpe")


@pytest.fixture(scope="session", params=["syllable", "bpe"])
def any_model_dir(request, tiny_model_dir, tiny_bpe_model_dir):
    """Each decoding path in turn: the syllable automaton and the character-level regex."""
    return tiny_model_dir if request.param == "syllable" else tiny_bpe_model_dir
