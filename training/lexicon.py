"""The model's lexicon: Vietnamese syllables seen in the training split.

Written as `lexicon.txt` into the model directory (one lowercase syllable per
line). The engine uses it where the form forces a rhyme: the rhyming syllable
is chosen among real words instead of any spelling the alphabet admits, so a
forced rhyme never invents a non-word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from engine.model_dir import LEXICON_FILE
from engine.prosody import is_vietnamese_syllable, syllables

MIN_COUNT = 30  # rarer spellings are mostly typos and loanword fragments ("choa", "qùa")


def build_lexicon(poems_lines: Iterable[list[str]], min_count: int = MIN_COUNT) -> list[str]:
    counts: Counter[str] = Counter()
    for lines in poems_lines:
        for line in lines:
            counts.update(w.lower() for w in syllables(line) if is_vietnamese_syllable(w))
    return sorted(w for w, c in counts.items() if c >= min_count)


def write_lexicon(poems_lines: Iterable[list[str]], model_dir: str | Path, min_count: int = MIN_COUNT) -> int:
    words = build_lexicon(poems_lines, min_count)
    (Path(model_dir) / LEXICON_FILE).write_text("\n".join(words) + "\n", encoding="utf-8")
    return len(words)
