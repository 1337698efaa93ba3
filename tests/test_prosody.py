"""Vietnamese prosody on a table of real syllables."""

import unicodedata

import pytest

from engine.prosody import (
    VIETNAMESE_LETTERS,
    Tone,
    ToneClass,
    is_vietnamese_syllable,
    rhymes,
    rime,
    syllables,
    tone,
    tone_class,
)

# syllable, tone, rime (no onset, no glide, no tone)
TABLE = [
    ("ma", Tone.NGANG, "a"),
    ("mà", Tone.HUYEN, "a"),
    ("má", Tone.SAC, "a"),
    ("mả", Tone.HOI, "a"),
    ("mã", Tone.NGA, "a"),
    ("mạ", Tone.NANG, "a"),
    ("hoa", Tone.NGANG, "a"),
    ("hoà", Tone.HUYEN, "a"),
    ("hòa", Tone.HUYEN, "a"),  # both mark placements
    ("thuý", Tone.SAC, "y"),
    ("thúy", Tone.SAC, "y"),
    ("quà", Tone.HUYEN, "a"),
    ("quê", Tone.NGANG, "ê"),
    ("gì", Tone.HUYEN, "i"),
    ("giữa", Tone.NGA, "ưa"),
    ("gìn", Tone.HUYEN, "in"),
    ("già", Tone.HUYEN, "a"),
    ("đường", Tone.HUYEN, "ương"),
    ("Đường", Tone.HUYEN, "ương"),
    ("ĐẸP", Tone.NANG, "ep"),
    ("nghiêng", Tone.NGANG, "iêng"),
    ("khuya", Tone.NGANG, "ya"),
    ("tuần", Tone.HUYEN, "ân"),
    ("thuở", Tone.HOI, "ơ"),
    ("mua", Tone.NGANG, "ua"),
    ("muốn", Tone.SAC, "uôn"),
    ("người", Tone.HUYEN, "ươi"),
    ("ngoằn", Tone.HUYEN, "ăn"),
    ("khoẻ", Tone.HOI, "e"),
    ("huyền", Tone.HUYEN, "yên"),
    ("ấy", Tone.SAC, "ây"),
    ("ở", Tone.HOI, "ơ"),
    ("rượu", Tone.NANG, "ươu"),
    ("học", Tone.NANG, "oc"),
    ("sách", Tone.SAC, "ach"),
]


@pytest.mark.parametrize("syllable, expected_tone, expected_rime", TABLE)
def test_tone_and_rime(syllable, expected_tone, expected_rime):
    assert tone(syllable) is expected_tone
    assert tone_class(syllable) is (ToneClass.BANG if expected_tone in (Tone.NGANG, Tone.HUYEN) else ToneClass.TRAC)
    assert rime(syllable) == expected_rime


def test_decomposed_input_reads_like_composed():
    decomposed = unicodedata.normalize("NFD", "Người")
    assert tone(decomposed) is Tone.HUYEN and rime(decomposed) == "ươi"
    assert syllables(decomposed) == ["Người"]


@pytest.mark.parametrize(
    "a, b",
    [
        ("hoa", "xa"),
        ("hòa", "quà"),
        ("người", "cười"),
        ("thi", "huy"),
        ("khuya", "kia"),
        ("mây", "đây"),
        ("thương", "đường"),
        ("trăng", "rằng"),
        ("nhau", "dâu"),
        ("rồi", "đời"),
        ("sân", "tan"),
    ],
)
def test_rhymes(a, b):
    assert rhymes(a, b) and rhymes(b, a)


@pytest.mark.parametrize(
    "a, b",
    [
        ("xa", "xá"),  # bằng vs trắc
        ("hoa", "hoa"),
        ("hoà", "hòa"),  # the same word is not a rhyme
        ("mây", "mưa"),
        ("an", "ang"),
        ("", "xa"),
    ],
)
def test_does_not_rhyme(a, b):
    assert not rhymes(a, b)


def test_syllables_ignore_punctuation_and_keep_words():
    assert syllables("Mùa thu, lá vàng rơi... trên phố - Hà Nội!") == [
        "Mùa",
        "thu",
        "lá",
        "vàng",
        "rơi",
        "trên",
        "phố",
        "Hà",
        "Nội",
    ]
    assert syllables("... — !") == []
    assert syllables("  nhiều   khoảng\ttrắng ") == ["nhiều", "khoảng", "trắng"]


def test_punctuation_without_a_space_still_parts_syllables():
    """The checker and the opening's form read "Mùa,thu,lá,..." as the form automaton does (syllable
    by syllable): counted as one glued word before, an 8-syllable opening passed as a 5 chữ line."""
    from engine.request import PoemRequest
    from engine.syllable_text import is_word, pieces

    glued = "Mùa,thu,lá,vàng,rơi,trên,cây,cao"
    assert syllables(glued) == ["Mùa", "thu", "lá", "vàng", "rơi", "trên", "cây", "cao"]
    assert syllables("Mùa thu...lá vàng rơi") == ["Mùa", "thu", "lá", "vàng", "rơi"]
    assert syllables(glued) == [p for p in pieces(glued) if is_word(p)]  # the tokenizer's own reading
    assert PoemRequest(glued).form_id == "8chu"


def test_alphabet_is_spelled_out():
    # The constraint's alphabet must not admit Greek or Cyrillic look-alikes.
    for foreign in "αβγабв":
        assert foreign not in VIETNAMESE_LETTERS
    assert is_vietnamese_syllable("nghiêng") and is_vietnamese_syllable("Đường")
    assert not is_vietnamese_syllable("world") and not is_vietnamese_syllable("καλά")
