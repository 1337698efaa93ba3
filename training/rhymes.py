"""Which line ends rhyme, stanza by stanza: the habit a model should pick up from its poems.

    python -m training rhymes                          # the training split's 5/7/8 chữ poems
    python -m training rhymes build/poems-free.jsonl   # poems from python -m engine generate

For every four-line stanza of a 5, 7 or 8 chữ poem it counts, for each of the six pairs of lines,
whether their last syllables rhyme (engine.prosody.rhymes: same rhyme class and tone class), and prints
the share of stanzas in which each pair does, with the form's default scheme score beside it. Two
random line ends rhyme a few times in a hundred; the training poems' 5 chữ stanzas rhyme lines 2 and 4
about a third of the time. A model that only reaches the random rate has not learned its form's rhyme,
whatever its checker total says about lengths and tones.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from engine.forms import LINES_PER_STANZA, RHYME_SCHEMES, get_form
from engine.prosody import rhymes, syllables
from training.corpus import chunks, read_split

FORMS = ("5chu", "7chu", "8chu")  # the forms with an end-rhyme scheme
PAIRS = tuple(itertools.combinations(range(LINES_PER_STANZA), 2))


def stanzas_of_split(path: Path) -> Iterable[tuple[str, list[str]]]:
    for poem in read_split(path):
        for form, lines in chunks(poem):
            for start in range(0, len(lines), LINES_PER_STANZA):
                yield form, lines[start : start + LINES_PER_STANZA]


def stanzas_of_generated(path: Path) -> Iterable[tuple[str, list[str]]]:
    for row in path.read_text(encoding="utf-8").splitlines():
        if row.strip():
            poem = json.loads(row)
            lines = poem.get("lines") or []
            for start in range(0, len(lines), LINES_PER_STANZA):
                yield poem.get("form"), lines[start : start + LINES_PER_STANZA]


def pair_rates(stanzas: Iterable[tuple[str, list[str]]], forms: tuple[str, ...] = FORMS) -> dict[str, dict]:
    """Per form: stanzas counted, the share in which each pair of line ends rhymes, and the form's
    default scheme's share (the mean over its pairs, as the checker scores rhyme)."""
    counts: dict[str, Counter] = {form: Counter() for form in forms}
    n: Counter = Counter()
    for form, stanza in stanzas:
        ends = [(syllables(line) or [""])[-1] for line in stanza]
        if form not in counts or len(ends) < LINES_PER_STANZA:
            continue
        n[form] += 1
        for i, j in PAIRS:
            counts[form][(i, j)] += rhymes(ends[i], ends[j])
    report = {}
    for form in forms:
        if not n[form]:
            continue
        rates = {f"{i + 1}-{j + 1}": round(counts[form][(i, j)] / n[form], 3) for i, j in PAIRS}
        scheme = get_form(form).default_scheme
        scheme_pairs = [
            f"{g[k - 1] + 1}-{g[k] + 1}" for g in RHYME_SCHEMES[scheme] for k in range(1, len(g))
        ]  # as Form.rhyme_positions chains a group
        report[form] = {
            "stanzas": n[form],
            "pairs": rates,
            "scheme": scheme,
            "scheme_rate": round(sum(rates[p] for p in scheme_pairs) / len(scheme_pairs), 3),
        }
    return report


def rhymes_report(poems_path: Path | None, data_dir: Path) -> dict:
    stanzas = stanzas_of_generated(poems_path) if poems_path else stanzas_of_split(data_dir / "train.jsonl")
    report = pair_rates(stanzas)
    print("form   stanzas  " + "  ".join(f"{i + 1}-{j + 1}  " for i, j in PAIRS) + "  default scheme")
    for form, r in report.items():
        print(
            f"{form:<6} {r['stanzas']:>7}  "
            + "  ".join(f"{r['pairs'][f'{i + 1}-{j + 1}']:.3f}" for i, j in PAIRS)
            + f"  {r['scheme']} {r['scheme_rate']:.3f}"
        )
    return report
