"""The HF backend's token draw: what the form forbids is never drawn, top-k and top-p cut where
they say, and what is left is drawn as often as its probability says."""

from __future__ import annotations

import math
from collections import Counter

import torch

from engine.backends.hf import NUCLEUS_FIRST_LOOK, sample_token

DRAWS = 4000


def draws(logits: torch.Tensor, temperature=1.0, top_k=0, top_p=1.0, seed=0, n=DRAWS) -> Counter:
    g = torch.Generator().manual_seed(seed)
    return Counter(sample_token(logits, temperature, top_k, top_p, g) for _ in range(n))


def logits_of(probs: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(p) if p > 0 else float("-inf") for p in probs])


def test_forbidden_tokens_are_never_drawn_and_the_rest_as_often_as_their_probability():
    counts = draws(logits_of([0.0, 0.5, 0.0, 0.3, 0.2, 0.0]))
    assert set(counts) == {1, 3, 4}
    for token, p in ((1, 0.5), (3, 0.3), (4, 0.2)):
        assert abs(counts[token] / DRAWS - p) < 0.03, (token, counts)


def test_top_p_keeps_the_smallest_set_reaching_it():
    # 0.5 + 0.3 reaches 0.7: the 0.15 and 0.05 tokens are cut, the two kept renormalised to 5/8, 3/8
    counts = draws(logits_of([0.5, 0.3, 0.15, 0.05]), top_p=0.7)
    assert set(counts) == {0, 1}
    assert abs(counts[0] / DRAWS - 0.625) < 0.03


def test_top_p_always_keeps_the_most_likely_token():
    assert set(draws(logits_of([0.6, 0.4]), top_p=0.01)) == {0}


def test_top_k_and_temperature():
    probs = [0.4, 0.3, 0.2, 0.1]
    assert set(draws(logits_of(probs), top_k=2)) == {0, 1}
    cold = draws(logits_of(probs), temperature=0.2)
    assert cold[0] / DRAWS > 0.75  # (0.4/0.3)^5 = 4.2 times the runner-up


def test_a_nucleus_wider_than_the_first_look_is_not_cut_short():
    """A flat distribution over 6,000 tokens: top-p 0.9 keeps ~5,400 of them, far more than
    the first topk looks at, and tokens beyond those are drawn too."""
    logits = torch.zeros(6000)
    counts = draws(logits, top_p=0.9, n=1000)
    assert max(counts) > NUCLEUS_FIRST_LOOK * 2
    assert len(counts) > 800  # 1,000 draws over ~5,400 tokens: few repeats


def test_same_generator_seed_same_tokens():
    logits = torch.randn(500)
    assert draws(logits, top_p=0.9, seed=3, n=300) == draws(logits, top_p=0.9, seed=3, n=300)
    assert draws(logits, top_p=0.9, seed=3, n=300) != draws(logits, top_p=0.9, seed=4, n=300)
