"""Fluency measures of `python -m training evaluate`: known bigrams and the generated-vs-real discriminator."""

import random

from training import metrics

REAL = [
    "Mùa thu lá rụng rơi",
    "Gió heo may lá qua",
    "Em đi trên lối đời",
    "Nhớ mãi một người xa",
    "Trăm năm trong cõi người ta",
    "Chữ tài chữ mệnh khéo là ghét nhau",
]


def test_known_bigrams_tell_word_salad_from_the_training_text():
    known = metrics.bigrams_of(REAL)
    assert metrics.known_bigram_rate(REAL[:2], known) == 1.0
    assert metrics.known_bigram_rate(["rơi mùa qua heo nhau ghét"], known) == 0.0


def test_the_discriminator_is_near_chance_on_one_source_and_sure_on_two():
    rnd = random.Random(0)
    words = " ".join(REAL).lower().split()
    same_a = [" ".join(rnd.choices(words, k=6)) for _ in range(60)]
    same_b = [" ".join(rnd.choices(words, k=6)) for _ in range(60)]
    other = [" ".join(rnd.choices(["xanh", "đỏ", "tím", "vàng", "nâu"], k=6)) for _ in range(60)]
    assert metrics.discriminator_accuracy(same_a, same_b) < 0.7
    assert metrics.discriminator_accuracy(same_a, other) > 0.95


def test_end_probabilities_read_the_end_token_right_after_each_line(tmp_path):
    """evaluate's "end token after line k" is P(end | the form tag and lines 1..k), as free decoding meets it."""
    import torch

    from engine.prompt import END_OF_POEM, FORM_TAGS, LINE_SEPARATOR
    from tests.tiny_model import build_tiny_model
    from training.dataset import encode
    from training.likelihood import PoemScorer, end_probabilities

    model_dir = build_tiny_model(tmp_path / "tiny")
    poem = REAL[:4]
    scorer = PoemScorer(model_dir)
    got = end_probabilities(scorer, [("5chu", poem)])
    end = scorer.tokenizer.convert_tokens_to_ids(END_OF_POEM)
    want = []
    for k in range(1, 5):
        (ids,) = encode([FORM_TAGS["5chu"] + LINE_SEPARATOR.join(poem[:k])], scorer.tokenizer)
        with torch.no_grad():
            want.append(float(scorer.model(input_ids=torch.tensor([ids])).logits[0, -1].softmax(-1)[end]))
    assert list(got) == ["5chu"] and len(got["5chu"]) == 4
    # relative: a tiny random model's probabilities are all small, and an off-by-one moves them a little
    assert all(abs(g - w) <= 1e-2 * w for g, w in zip(got["5chu"], want, strict=True)), (got, want)
