"""engine.explain: each syllable's probability and attention, on the tiny test models."""

from __future__ import annotations

import asyncio
import math

import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel

from engine.explain import Explainer
from engine.model_dir import ModelDirError
from engine.prompt import FORM_TAGS
from engine.syllable_text import codec_for_model

# A comma the vocabulary has, quotes it lacks (dropped from the model's text),
# an unknown word (the unknown token) and a closing mark.
POEM = ["Mùa thu lá vàng rơi, Xyzqw", "Gió heo may về qua", 'Em đi trên "phố" vắng', "Nhớ mãi một người xa!"]
OPENING = "Mùa thu lá"
FORM = "5chu"


@pytest.fixture(scope="module")
def explanation(tiny_model_dir):
    return asyncio.run(Explainer().explain(tiny_model_dir, FORM, POEM, OPENING))


def direct_probabilities(model_dir) -> tuple[list[str], list[float]]:
    """The model text's tokens, and each token's probability given the ones before it, from a plain forward."""
    model = GPT2LMHeadModel.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    text = FORM_TAGS[FORM] + codec_for_model(model_dir).to_model("\n".join(POEM))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    return tokenizer.convert_ids_to_tokens(ids), [1.0] + [
        float(log_probs[t - 1, ids[t]].exp()) for t in range(1, len(ids))
    ]


def test_probabilities_are_those_of_a_plain_forward_pass(explanation, tiny_model_dir):
    tokens, probabilities = direct_probabilities(tiny_model_dir)
    # Positions: the form tag 0, line 1's words 1-5, its comma 6, "Xyzqw" 7, the
    # line break 8, line 2 9-13, a line break 14, line 3 15-19 (its quotes dropped).
    assert tokens[7] == "<|unk|>" and tokens[8] == "\n" and tokens[14] == "\n"
    assert explanation.lines[0][5].probability == pytest.approx(probabilities[7], rel=1e-4)
    assert explanation.lines[1][0].probability == pytest.approx(probabilities[9], rel=1e-4)
    assert explanation.lines[2][4].probability == pytest.approx(probabilities[19], rel=1e-4)
    assert all(0.0 < s.probability < 1.0 for line in explanation.lines for s in line)


def test_lines_and_syllables_match_the_poem_as_displayed(explanation):
    texts = [[s.text for s in line] for line in explanation.lines]
    assert texts == [
        ["Mùa", "thu", "lá", "vàng", "rơi", "Xyzqw"],
        ["Gió", "heo", "may", "về", "qua"],
        ["Em", "đi", "trên", "phố", "vắng"],
        ["Nhớ", "mãi", "một", "người", "xa"],
    ]
    assert explanation.model_version == "tiny-a"


def test_the_openings_syllables_are_not_generated(explanation):
    assert [s.generated for s in explanation.lines[0]] == [False, False, False, True, True, True]
    assert all(s.generated for line in explanation.lines[1:] for s in line)


def test_attention_rows_sum_to_one_over_earlier_syllables_and_are_zero_elsewhere(explanation):
    flat_index = 0
    for li, line in enumerate(explanation.lines, start=1):
        for si in range(1, len(line) + 1):
            weights = [w for row in explanation.attention(li, si) for w in row]
            earlier, rest = weights[:flat_index], weights[flat_index:]
            assert all(w == 0.0 for w in rest)
            assert all(w >= 0.0 for w in earlier)
            assert math.fsum(earlier) == pytest.approx(1.0 if flat_index else 0.0)
            flat_index += 1


def test_attention_has_one_weight_per_syllable_of_every_line(explanation):
    rows = explanation.attention(3, 2)
    assert [len(row) for row in rows] == [len(line) for line in explanation.lines]


@pytest.mark.parametrize("line, index", [(0, 1), (5, 1), (1, 0), (1, 7), (2, 6), (-1, 1)])
def test_a_syllable_that_does_not_exist_is_an_index_error(explanation, line, index):
    with pytest.raises(IndexError):
        explanation.attention(line, index)


def test_least_sure_and_mean_cover_generated_syllables_only(explanation):
    generated = [s.probability for line in explanation.lines for s in line if s.generated]
    assert explanation.mean_probability == pytest.approx(sum(generated) / len(generated))
    least = explanation.least_sure(3)
    assert [score.probability for _, _, score in least] == sorted(generated)[:3]
    for line, index, score in least:
        assert score.generated and explanation.lines[line - 1][index - 1] is score


async def test_a_bpe_model_cannot_be_explained(tiny_bpe_model_dir):
    with pytest.raises(ModelDirError, match="not a syllable-level model"):
        await Explainer().explain(tiny_bpe_model_dir, FORM, POEM, OPENING)


async def test_an_unknown_form_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="unknown form"):
        await Explainer().explain(tiny_model_dir, "haiku", POEM, OPENING)


async def test_one_model_is_held_at_a_time(tiny_model_dir, tiny_model_dir_b):
    explainer = Explainer()
    first = await explainer.explain(tiny_model_dir, FORM, POEM, OPENING)
    second = await explainer.explain(tiny_model_dir_b, FORM, POEM, OPENING)
    assert (first.model_version, second.model_version) == ("tiny-a", "tiny-b")
    assert explainer._loaded is not None and explainer._loaded.path == tiny_model_dir_b.resolve()
    again = await explainer.explain(tiny_model_dir, FORM, POEM, OPENING)
    assert again.lines == first.lines
