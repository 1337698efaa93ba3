"""The form checker on known-good and known-bad poems."""

import pytest

from engine.forms import FORMS, check, label_form

GOOD_LUCBAT = [  # Truyện Kiều, the opening
    "Trăm năm trong cõi người ta",
    "Chữ tài chữ mệnh khéo là ghét nhau",
    "Trải qua một cuộc bể dâu",
    "Những điều trông thấy mà đau đớn lòng",
]
GOOD_5CHU = [  # tone 2/4 opposite, vần chéo (the 5 chữ default): lines 1-3 and 2-4 rhyme
    "Mùa thu lá rụng rơi",
    "Gió heo may lá qua",
    "Em đi trên lối đời",
    "Nhớ mãi một người xa",
]


def test_truyen_kieu_is_perfect_luc_bat():
    scores = check(GOOD_LUCBAT, "lucbat")
    assert scores.as_dict() == {"length": 1.0, "tone": 1.0, "rhyme": 1.0, "total": 1.0}
    assert scores.violations == ()


def test_good_5chu():
    scores = check(GOOD_5CHU, "5chu")
    assert scores.total == 1.0, scores.violations


def test_wrong_length_is_named():
    poem = GOOD_5CHU[:1] + ["Gió heo may lá bay qua"] + GOOD_5CHU[2:]
    scores = check(poem, "5chu")
    assert scores.length == 0.75
    assert any(v.line == 2 and v.rule == "length" for v in scores.violations)


def test_broken_rhyme_is_named():
    poem = GOOD_LUCBAT[:1] + ["Chữ tài chữ mệnh khéo là ghét ai"] + GOOD_LUCBAT[2:]
    scores = check(poem, "lucbat")
    assert scores.rhyme < 1.0 and scores.length == 1.0
    assert [v.line for v in scores.violations if v.rule == "rhyme"] == [3]  # ai vs dâu (line 3's 6th)


def test_broken_tone_is_named():
    poem = ["Trăm năm trong cõi người tá"] + GOOD_LUCBAT[1:]  # 6th syllable trắc
    scores = check(poem, "lucbat")
    assert scores.tone < 1.0
    assert any(v.line == 1 and v.rule == "tone" for v in scores.violations)


def test_missing_lines_count_against_length():
    scores = check(GOOD_5CHU[:3], "5chu", stanzas=1)
    assert scores.length == 0.75
    assert any(v.rule == "lines" for v in scores.violations)


def test_prose_scores_low_as_5chu():
    prose = ["Hôm nay tôi đi chợ mua rất nhiều rau củ quả tươi ngon"] * 4
    assert check(prose, "5chu").total < 0.5


def test_tudo_only_counts_length():
    assert check(["Hà Nội", "mùa thu", "gió lạnh đầu đông về trên phố", "em"], "tudo").length == 0.75


@pytest.mark.parametrize(
    "lines, form", [(GOOD_LUCBAT, "lucbat"), (GOOD_5CHU, "5chu"), (["Hà Nội mùa thu", "gió về"], "tudo")]
)
def test_label_form(lines, form):
    assert label_form(lines) == form


def test_every_form_has_a_vietnamese_title():
    assert {f.title for f in FORMS.values()} == {"5 chữ", "7 chữ", "8 chữ", "lục bát", "tự do"}


@pytest.mark.parametrize(
    "scheme, rhyming",
    [("lien", [(1, 2), (3, 4)]), ("cheo", [(1, 3), (2, 4)]), ("om", [(1, 4), (2, 3)]), ("tutuyet", [(1, 2), (2, 4)])],
)
def test_rhyme_schemes_name_the_lines_that_rhyme(scheme, rhyming):
    pairs = FORMS["5chu"].rhyme_positions(4, scheme)
    assert [(a[0] + 1, b[0] + 1) for a, b in pairs] == rhyming
    assert all(a[1] == b[1] == 5 for a, b in pairs)


def test_seven_chu_follows_one_luat_with_niem_and_doi():
    # Luật bằng (2nd syllable of line 1 bằng): B T B / T B T / T B T / B T B on syllables 2, 4, 6.
    good = [
        "Chiều nay em đứng bên dòng sông",
        "Gió thổi qua đồi nắng chiếu nghiêng",
        "Mây trắng bay về nơi cuối bãi",
        "Trăng lên soi bóng cánh đồng riêng",
    ]
    scores = check(good, "7chu")
    assert scores.tone == 1.0, scores.violations
    broken = good[:1] + ["Chiều về em đứng bên dòng nghiêng"] + good[2:]  # line 2 in the wrong luật
    assert check(broken, "7chu").tone < 1.0


def test_eight_chu_alternates_syllables_3_6_8():
    assert check(["Em không nghe mùa thu dưới trăng mờ"] * 4, "8chu").tone == 1.0
    assert check(["Em không nghe mùa thu trên trăng mờ"] * 4, "8chu").tone == 0.0
