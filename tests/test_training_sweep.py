"""The sampling sweep's score: form first, then written lines whose statistics are a real poem's."""

from training.sweep import RealLines, realism_score

TRAINING_BIGRAMS = {("gió", "thu"), ("thu", "về"), ("trăng", "soi"), ("soi", "bến"), ("bến", "xưa")}


def real_lines() -> RealLines:
    # 5 of the 6 bigrams are known (only "mưa rơi" is not); 6 distinct of 6 (distinct-2 1.0)
    return RealLines([["gió thu về", "trăng soi bến xưa"], ["mưa rơi"]], TRAINING_BIGRAMS)


def test_real_lines_measure_the_real_continuations():
    real = real_lines()
    assert real.distinct_2 == 1.0
    assert abs(real.known_bigrams - 5 / 6) < 1e-9


def test_matching_the_real_statistics_beats_stock_phrases_and_word_salad():
    real = real_lines()
    like_real = realism_score(1.0, distinct_2=1.0, known_bigrams=5 / 6, discriminator=0.5, real=real)
    stock = realism_score(1.0, distinct_2=0.7, known_bigrams=0.98, discriminator=0.85, real=real)
    salad = realism_score(1.0, distinct_2=1.0, known_bigrams=0.3, discriminator=0.7, real=real)
    assert like_real == 1.0
    assert stock < like_real and salad < like_real


def test_form_still_weighs_most():
    real = real_lines()
    broken_form = realism_score(0.5, distinct_2=1.0, known_bigrams=5 / 6, discriminator=0.5, real=real)
    bland = realism_score(1.0, distinct_2=0.8, known_bigrams=0.8, discriminator=0.75, real=real)
    assert broken_form < bland
