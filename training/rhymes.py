"""Which line ends rhyme, stanza by stanza: the habit a model should pick up from its poems.

    python -m training rhymes                          # the training split's 5/7/8 chữ poems
    python -m training rhymes build/poems-free.jsonl   # poems from python -m engine generate

For every four-line stanza of a form with an end-rhyme scheme (5, 7, 8 chữ) it counts, for each of the
six pairs of lines, whether their line ends rhyme (the syllable at the form's line length, as
engine.forms.check reads it; engine.prosody.rhymes: same rhyme class and tone class), and prints the
share of stanzas in which each pair does, with the share of the default scheme's pairs beside it (the
checker's rhyme score over whole stanzas). Pairs no poet links rhyme at the chance rate; a model that
rhymes every pair at that rate has not learned its form's rhyme, whatever its checker total says about
lengths and tones. README, "Rhyme in free decoding", has the figures.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from engine.forms import FORM_IDS, LINES_PER_STANZA, get_form, stanzas_of
from engine.prosody import rhymes, syllables
from training.corpus import chunks, read_split

FORMS = tuple(f for f in FORM_IDS if get_form(f).default_scheme)  # the forms with an end-rhyme scheme
PAIRS = tuple(itertools.combinations(range(LINES_PER_STANZA), 2))


def stanzas_of_split(path: Path) -> Iterable[tuple[str, list[str]]]:
    for poem in read_split(path):
        for form, lines in chunks(poem):
            for stanza in stanzas_of(lines):
                yield form, stanza


def stanzas_of_generated(path: Path) -> Iterable[tuple[str, list[str]]]:
    for row in path.read_text(encoding="utf-8").splitlines():
        if row.strip():
            poem = json.loads(row)
            for stanza in stanzas_of(poem.get("lines") or []):
                yield poem.get("form"), stanza


def pair_rates(stanzas: Iterable[tuple[str, list[str]]], forms: tuple[str, ...] = FORMS) -> dict[str, dict]:
    """Per form: stanzas counted, the share in which each pair of line ends rhymes, and the share of the
    default scheme's pairs that rhyme (the checker's rhyme score, over whole stanzas)."""
    counts: dict[str, Counter] = {form: Counter() for form in forms}
    n: Counter = Counter()
    for form, stanza in stanzas:
        if form not in counts or len(stanza) < LINES_PER_STANZA:
            continue
        spec = get_form(form)
        ends = []
        for i, line in enumerate(stanza):
            sylls, at = syllables(line), spec.length_of(i)[1]
            ends.append(sylls[at - 1] if at <= len(sylls) else "")
        n[form] += 1
        for i, j in PAIRS:
            counts[form][(i, j)] += rhymes(ends[i], ends[j])
    report = {}
    for form in forms:
        if not n[form]:
            continue
        scheme_pairs = [(a[0], b[0]) for a, b in get_form(form).rhyme_positions(LINES_PER_STANZA)]
        report[form] = {
            "stanzas": n[form],
            "pairs": {f"{i + 1}-{j + 1}": round(counts[form][(i, j)] / n[form], 3) for i, j in PAIRS},
            "scheme": get_form(form).default_scheme,
            "scheme_rate": round(sum(counts[form][p] for p in scheme_pairs) / (len(scheme_pairs) * n[form]), 3),
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
