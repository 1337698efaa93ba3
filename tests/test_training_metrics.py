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
