"""Non-words in generated poems: syllables outside the syllable vocabulary.

    python -m training openings --per-form 100 --out build/openings.jsonl
    python -m engine generate --model models/<version> --input build/openings.jsonl --output build/poems.jsonl
    python -m training nonwords build/poems.jsonl [--tokenizer build/tokenizer]

`openings` writes the first lines of held-out (test-split) poems, 100 per
form (5 chữ, lục bát, 7 chữ, 8 chữ), none of which occurs in the training
split; they stay under build/ (corpus text is not committed). `nonwords`
counts, in the lines each poem adds after its opening, the syllables that
are not in the syllable tokenizer's vocabulary (built from the training
split: every syllable seen at least ten times), whatever model wrote them,
so two models' counts compare.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from engine.syllable_text import codec_for_model, is_word, pieces
from training.corpus import read_split
from training.generate import openings, training_line_set

FORMS = ("5chu", "lucbat", "7chu", "8chu")


def write_openings(data_dir: Path, out: Path, per_form: int) -> int:
    by_form = openings(
        read_split(data_dir / "test.jsonl"), training_line_set(read_split(data_dir / "train.jsonl")), FORMS, per_form
    )
    rows = [{"line": o.line, "form": form, "seed": i} for form, items in by_form.items() for i, o in enumerate(items)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} openings -> {out} " + ", ".join(f"{f}={len(v)}" for f, v in by_form.items()))
    return len(rows)


def count_nonwords(poems_path: Path, tokenizer_dir: Path) -> dict:
    codec = codec_for_model(tokenizer_dir)
    total, outside = 0, Counter()
    poems = [json.loads(line) for line in poems_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for poem in poems:
        for line in poem.get("lines", [])[1:]:
            for word in (p for p in pieces(line) if is_word(p)):
                total += 1
                if codec.fold(word) is None:
                    outside[word.lower()] += 1
    report = {
        "poems": len(poems),
        "syllables": total,
        "outside_vocabulary": sum(outside.values()),
        "share": round(sum(outside.values()) / max(1, total), 5),
        "examples": outside.most_common(15),
    }
    print(
        f"{report['outside_vocabulary']} of {total} generated syllables ({100 * report['share']:.2f}%) are outside "
        f"the syllable vocabulary, in {len(poems)} poems; most common: "
        + ", ".join(f"{w} ({n})" for w, n in report["examples"])
    )
    return report
