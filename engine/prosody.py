"""Vietnamese prosody: syllables, tones (thanh) and rhymes (vần).

Vietnamese is written one syllable per space-separated word, so counting
"chữ" in a line of poetry is counting syllables. A syllable is
(onset) + (medial glide) + nucleus + (coda), plus one of six tones written as a
diacritic on the nucleus. Poetry cares about two things:

- tone class: bằng (level: ngang, huyền) versus trắc (oblique: sắc, hỏi, ngã,
  nặng);
- rhyme (vần): the syllable minus its onset and glide, with the tone class
  (bằng rhymes with bằng). "hoa" rhymes with "xa", "hòa" with "quà".

Tone marks may sit on either vowel of a pair ("hoà" / "hòa", "thuý" / "thúy"):
we strip tones by Unicode decomposition, so both placements read the same.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from functools import lru_cache

# Combining marks that carry the tone; the others (circumflex U+0302, breve
# U+0306, horn U+031B) belong to the letter itself (â, ă, ơ, ư).
_TONE_MARKS = {
    "\u0300": "huyen",  # à
    "\u0301": "sac",  # á
    "\u0309": "hoi",  # ả
    "\u0303": "nga",  # ã
    "\u0323": "nang",  # ạ
}

BASE_VOWELS = "aăâeêioôơuưy"
BASE_CONSONANTS = "bcdđghklmnpqrstvx"


def _with_mark(ch: str, mark: str) -> str:
    return unicodedata.normalize("NFC", ch + mark)


# The Vietnamese alphabet spelled out: letters that may appear in a syllable.
# Spelt out on purpose (not a range such as "à-ỹ", which also admits Greek and
# Cyrillic letters); is_vietnamese_syllable and the tokenizer's vocabulary rest on them.
LEVEL_VOWELS = "".join(BASE_VOWELS + "".join(_with_mark(v, "\u0300") for v in BASE_VOWELS))
OBLIQUE_VOWELS = "".join(_with_mark(v, m) for m in ("\u0301", "\u0309", "\u0303", "\u0323") for v in BASE_VOWELS)
LOWER_LETTERS = BASE_CONSONANTS + LEVEL_VOWELS + OBLIQUE_VOWELS
VIETNAMESE_LETTERS = LOWER_LETTERS + LOWER_LETTERS.upper()
_LETTER_SET = frozenset(VIETNAMESE_LETTERS)


class Tone(enum.Enum):
    NGANG = "ngang"
    HUYEN = "huyen"
    SAC = "sac"
    HOI = "hoi"
    NGA = "nga"
    NANG = "nang"

    @property
    def is_bang(self) -> bool:
        return self in (Tone.NGANG, Tone.HUYEN)


class ToneClass(enum.Enum):
    BANG = "B"  # bằng
    TRAC = "T"  # trắc


# Onsets, longest first so "ngh" wins over "ng" and "n".
# fmt: off
ONSETS = ("ngh", "ng", "nh", "ch", "gh", "gi", "kh", "ph", "qu", "th", "tr",
          "b", "c", "d", "đ", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x")
# fmt: on

# A word: a run of letters and digits; anything else (spaces, punctuation, dashes) parts words, here
# and in the syllable tokenizer's pieces (engine.syllable_text): "Mùa,thu" is two syllables.
WORD_PATTERN = r"[^\W_]+"
_WORD = re.compile(WORD_PATTERN)


def syllables(line: str) -> list[str]:
    """Split a line into its syllables, dropping punctuation around them.

    A run of letters and digits counts as a syllable when it contains at
    least one letter (Vietnamese or not), so "Hà Nội," is two syllables,
    "Mùa,thu" two and "..." none.
    """
    return [w for w in _WORD.findall(unicodedata.normalize("NFC", line)) if any(ch.isalpha() for ch in w)]


@lru_cache(maxsize=65536)
def _split_tone(syllable: str) -> tuple[str, Tone]:
    """Lowercase toneless spelling (NFC) and the tone of one syllable."""
    tone = Tone.NGANG
    kept = []
    for ch in unicodedata.normalize("NFD", syllable.lower()):
        name = _TONE_MARKS.get(ch)
        if name:
            tone = Tone(name)
        else:
            kept.append(ch)
    return unicodedata.normalize("NFC", "".join(kept)), tone


def identity(syllable: str) -> tuple[str, Tone]:
    """What makes two spellings one syllable: "nhòa" and "nhoà" (the mark on o or on a) are one."""
    return _split_tone(syllable)


def tone(syllable: str) -> Tone:
    """The tone (thanh) of a syllable; ngang when there is no mark."""
    return _split_tone(syllable)[1]


def tone_class(syllable: str) -> ToneClass:
    return ToneClass.BANG if tone(syllable).is_bang else ToneClass.TRAC


def is_vietnamese_syllable(word: str) -> bool:
    """Whether a word is spelt with Vietnamese letters and has a vowel."""
    w = unicodedata.normalize("NFC", word)
    if not w or not all(ch in _LETTER_SET for ch in w):
        return False
    bare, _ = _split_tone(w)
    return any(ch in BASE_VOWELS for ch in bare)


@lru_cache(maxsize=65536)
def split_syllable(syllable: str) -> tuple[str, str, str]:
    """(onset, glide, rime) of a toneless lowercase syllable.

    "gi" and "qu" are onsets ("già" -> gi + a, "quả" -> qu + a), except "gi"
    before a consonant or alone ("gìn" -> g + in, "gì" -> g + i). The glide is
    the medial o/u of "hoa", "huy", "thuế", "quê"; rhymes ignore it.
    """
    bare, _ = _split_tone(syllable)
    onset = ""
    for cand in ONSETS:
        if bare.startswith(cand):
            onset = cand
            break
    rest = bare[len(onset) :]
    if onset == "gi" and (not rest or rest[0] not in BASE_VOWELS):
        onset, rest = "g", bare[1:]
    glide = ""
    if onset == "qu":
        onset, glide = "q", "u"
    elif len(rest) >= 2 and rest[0] == "o" and rest[1] in "aăe":
        glide, rest = "o", rest[1:]  # "hoa", "hoặc", "khoe"
    elif len(rest) >= 2 and rest[0] == "u" and rest[1] in "âêyơ":
        glide, rest = "u", rest[1:]  # "tuần", "thuế", "huy", "thuở"; "mua", "muôn" keep u
    return onset, glide, rest


def rime(syllable: str) -> str:
    """The toneless rhyme part of a syllable (no onset, no glide)."""
    return split_syllable(syllable)[2]


def rhyme_class(r: str) -> str:
    """The rhyme class of a toneless rime: exact rhyme plus the usual vần thông.

    i and y spell the same vowel ("huy"/"thi", "khuya"/"kia"); a, ă, â before a
    coda rhyme together ("nhau"/"dâu", "tan"/"ngăn"/"sân"), as do o, ô, ơ before
    n, m, t, i ("rồi"/"đời", "hơn"/"hồn"), as Truyện Kiều and ca dao rhyme them.
    """
    if r.startswith("y"):
        r = "i" + r[1:]
    if len(r) >= 2 and r[0] in "ăâ":
        r = "a" + r[1:]
    if len(r) >= 2 and r[0] in "ôơ" and r[1] in "nmti":
        r = "o" + r[1:]
    return r


def rhyme_key(syllable: str) -> tuple[str, ToneClass]:
    """Two syllables rhyme when their keys are equal (and they are not the same word)."""
    return rhyme_class(rime(syllable)), tone_class(syllable)


def rhymes(a: str, b: str) -> bool:
    """Whether two syllables rhyme: same rime, same tone class.

    A syllable does not rhyme with itself spelt the same (điệp âm is not vần).
    """
    if not a or not b:
        return False
    if identity(a) == identity(b):
        return False
    return rhyme_key(a) == rhyme_key(b)
