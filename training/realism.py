"""Written poems set beside real ones: the figures a reader's statistics notice, over many openings at once.

    python -m training openings --per-form 100 --out build/openings.jsonl
    python -m engine generate --model models/<version> --input build/openings.jsonl --output build/poems.jsonl
    python -m training realism build/poems.jsonl

Each written poem's lines 2-4 are matched, by its form and opening line, with the real lines 2-4 of the
test-split poem the opening came from, and both sides get the same figures: distinct-2, the known-bigram rate
(adjacent syllable pairs seen in the training split), the copy rate, and the discriminator (a classifier telling
the two apart; 0.5: it cannot). `evaluate` gives these per form on 50 openings; this gives them over the
400 poems `openings` asks for, where the discriminator is steadier, and for whatever sampling settings the
generate rows carried.
"""

from __future__ import annotations

import json
from pathlib import Path

from training import metrics
from training.corpus import read_split
from training.generate import openings, training_line_set
from training.nonwords import FORMS


def realism_report(poems_path: Path, data_dir: Path) -> dict:
    training_lines = training_line_set(read_split(data_dir / "train.jsonl"))
    every_opening = openings(read_split(data_dir / "test.jsonl"), training_lines, FORMS, per_form=10**9)
    reference = {(o.form, o.line): list(o.reference) for items in every_opening.values() for o in items}
    poems = [json.loads(line) for line in poems_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    written, real = [], []
    for poem in poems:
        lines = poem.get("lines") or []
        match = reference.get((poem.get("form"), lines[0] if lines else None))
        if match is not None:
            written.append(lines[1:4])
            real.append(match)
    bigrams = metrics.bigrams_of(training_lines)

    report = {
        "poems": len(poems),
        "matched": len(written),
        "written": metrics.line_figures(written, training_lines, bigrams),
        "real": metrics.line_figures(real, training_lines, bigrams),
        "discriminator": round(
            metrics.discriminator_accuracy(["\n".join(w) for w in written], ["\n".join(r) for r in real]), 4
        ),
    }
    w, r = report["written"], report["real"]
    print(
        f"{report['matched']} of {report['poems']} poems matched to their test poem; discriminator "
        f"{report['discriminator']:.3f}; distinct-2 {w['distinct_2']:.3f} (real {r['distinct_2']:.3f}); known bigrams "
        f"{100 * w['known_bigrams']:.1f}% (real {100 * r['known_bigrams']:.1f}%); copy rate "
        f"{100 * w['copy_rate']:.2f}% (real {100 * r['copy_rate']:.2f}%)"
    )
    return report
