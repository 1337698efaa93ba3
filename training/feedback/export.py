"""Ratings -> training data: the one documented export of the bot's database.

    python -m training feedback export --db data/tho.db --out build/feedback

Reads the bot's SQLite file (poems, ratings, regenerations; nothing else) in
one read transaction and writes JSONL that TRL reads as it is:

    kto.jsonl            unpaired examples  {"prompt", "completion", "label", "weight", "form", "opening"}
    dpo.jsonl            preference pairs   {"prompt", "chosen", "rejected", "weight", "form", "opening"}
    kto.heldout.jsonl    the same for the held-out openings (never trained on; the gate
    dpo.heldout.jsonl    measures preference accuracy on these pairs)
    summary.json         counts, and `until`: the newest signal's timestamp

`prompt` is the model's prompt (form tag and the user's opening, engine.prompt),
`completion` the rest of the poem up to the end token, so prompt + completion is
exactly `format_poem(form, lines)` — in the model's own spelling for a
syllable-level model (`spell`: its codec's `to_model`; the stored prompt is
written that way, "<|5chu|>mùa thu lá vàng rơi \n").  Only poem text, form, opening and labels
leave the database: no user key, no poem id, no settings, no timestamps per row.

The signals and their weights (one poem's score is the weighted mean of its
signals' values, in -1..1):

* a rating: value (stars - 3) / 2, weight 1 per rater.  A changed rating counts
  once, as its last value (the store keeps one row per user and poem); several
  raters average.
* /tholai within REGENERATION_WINDOW_S of the poem by its author, who did not
  rate it: value -1, weight IMPLICIT_WEIGHT (1/3).  Asking again is a weak "not
  this one": the user may only want to see another poem.  A rating by the same
  user wins over their own /tholai (they told us what they thought).

A poem with score >= +0.5 (about 4 stars or more) is desirable, <= -0.5 (about
2 stars or fewer, or an unrated quick /tholai) undesirable; poems between are
left out.  An example's weight is its total signal weight, capped at
MAX_WEIGHT (two raters agreeing are worth more than one; ten are not worth
ten).  Pairs join a desirable and an undesirable poem with the same prompt
(same form and opening); their weight is the smaller of the two.

The same text for the same prompt (a fixed seed writes the same poem again)
is one example whose signals add up.

Openings are held out by a hash of the prompt (HELDOUT_SHARE of them, the
same ones every round), so the gate judges feedback the candidate never saw.

Poems of users who deleted their data (/xoadulieu) are gone from the
database; the export also drops any poem whose user row is missing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.prompt import END_OF_POEM, FORM_TAGS, format_poem, split_lines

REGENERATION_WINDOW_S = 300.0  # /tholai later than this is not about the poem any more
IMPLICIT_WEIGHT = 1 / 3  # one /tholai counts a third of one rating
MAX_WEIGHT = 2.0
DESIRABLE_AT = 0.5  # score >= this: desirable (average >= 4 stars)
UNDESIRABLE_AT = -0.5  # score <= this: undesirable (average <= 2 stars)
HELDOUT_SHARE = 0.25
MAX_PAIRS_PER_PROMPT = 16

FILES = ("kto.jsonl", "dpo.jsonl", "kto.heldout.jsonl", "dpo.heldout.jsonl")


@dataclass
class Judged:
    """One poem and what its signals say about it."""

    prompt: str
    completion: str
    form: str
    opening: str
    value_sum: float = 0.0
    weight: float = 0.0
    ratings: int = 0
    regenerations: int = 0

    @property
    def score(self) -> float:
        return self.value_sum / self.weight if self.weight else 0.0

    @property
    def label(self) -> bool | None:
        if self.score >= DESIRABLE_AT:
            return True
        if self.score <= UNDESIRABLE_AT:
            return False
        return None

    @property
    def example_weight(self) -> float:
        return round(min(self.weight, MAX_WEIGHT), 4)


@dataclass
class Export:
    kto: list[dict] = field(default_factory=list)
    dpo: list[dict] = field(default_factory=list)
    kto_heldout: list[dict] = field(default_factory=list)
    dpo_heldout: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def is_heldout(prompt: str, share: float | None = None) -> bool:
    """Stable across rounds: the same openings are held out every time."""
    share = HELDOUT_SHARE if share is None else share
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _connect(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise FileNotFoundError(f"no database at {db_path}")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    db.row_factory = sqlite3.Row
    return db


Spell = Callable[[str], str]  # poem text -> the serving model's spelling of it (a syllable-level codec)


def _completion(prompt: str, form: str, text: str, spell: Spell | None = None) -> tuple[str, str] | None:
    """(prompt, the poem after it, end token included), or None if the poem does not start with the prompt.

    With `spell` both are written in the model's spelling, whichever way the bot stored the prompt.
    """
    lines = split_lines(text)
    if not lines:
        return None
    full = format_poem(form, lines)
    if spell is not None:
        tag = FORM_TAGS[form]
        prompt = tag + spell(prompt[len(tag) :]) if prompt.startswith(tag) else prompt
        full = tag + spell("\n".join(lines)) + END_OF_POEM
    return (prompt, full[len(prompt) :]) if full.startswith(prompt) and len(full) > len(prompt) else None


def judge(
    db: sqlite3.Connection, window_s: float = REGENERATION_WINDOW_S, spell: Spell | None = None
) -> tuple[dict[int, Judged], dict]:
    """Every poem with a signal, scored; plus counts and the newest signal's time."""
    poems: dict[int, Judged] = {}
    rated_by: set[tuple[int, str]] = set()

    def poem(row: sqlite3.Row) -> Judged | None:
        if row["id"] not in poems:
            written = _completion(row["prompt"], row["form"], row["text"], spell)
            if written is None:
                return None
            poems[row["id"]] = Judged(*written, row["form"], row["opening"])
        return poems[row["id"]]

    # Joining users drops the poems of deleted users even if a row were left behind.
    cols = "p.id, p.prompt, p.form, p.text, p.opening"
    until = max(
        db.execute("SELECT COALESCE(MAX(updated_at), '') FROM ratings").fetchone()[0],
        db.execute("SELECT COALESCE(MAX(created_at), '') FROM regenerations").fetchone()[0],
    )
    for row in db.execute(
        f"SELECT {cols}, r.user_key, r.stars, r.updated_at FROM ratings r"
        " JOIN poems p ON p.id = r.poem_id JOIN users u ON u.key = p.user_key"
        " JOIN users ru ON ru.key = r.user_key ORDER BY p.id"
    ):
        judged = poem(row)
        if judged is None:
            continue
        judged.value_sum += (row["stars"] - 3) / 2
        judged.weight += 1.0
        judged.ratings += 1
        rated_by.add((row["id"], row["user_key"]))
    regenerations = 0
    for row in db.execute(
        f"SELECT {cols}, g.user_key, g.seconds_after, g.created_at FROM regenerations g"
        " JOIN poems p ON p.id = g.poem_id JOIN users u ON u.key = p.user_key"
        " WHERE g.seconds_after <= ? AND g.user_key = p.user_key ORDER BY p.id",
        (window_s,),
    ):
        if (row["id"], row["user_key"]) in rated_by:
            continue  # their own rating says more
        judged = poem(row)
        if judged is None:
            continue
        judged.value_sum -= IMPLICIT_WEIGHT
        judged.weight += IMPLICIT_WEIGHT
        judged.regenerations += 1
        regenerations += 1
    return poems, {"until": until or None, "implicit_signals": regenerations}


def merge_same_text(judged) -> dict[tuple[str, str], Judged]:
    """The same poem written twice (same prompt and text, e.g. a fixed seed) is one example; its signals add up."""
    merged: dict[tuple[str, str], Judged] = {}
    for j in judged:
        key = (j.prompt, j.completion)
        if key not in merged:
            merged[key] = Judged(j.prompt, j.completion, j.form, j.opening)
        m = merged[key]
        m.value_sum += j.value_sum
        m.weight += j.weight
        m.ratings += j.ratings
        m.regenerations += j.regenerations
    return merged


def count_new_signals(db_path: str | Path, since: str | None) -> int:
    """Ratings set or changed, and /tholai presses, after `since` (an export's `until`)."""
    with _connect(Path(db_path)) as db:
        since = since or ""
        n = db.execute("SELECT COUNT(*) FROM ratings WHERE updated_at > ?", (since,)).fetchone()[0]
        n += db.execute("SELECT COUNT(*) FROM regenerations WHERE created_at > ?", (since,)).fetchone()[0]
    return int(n)


def build(db_path: str | Path, window_s: float = REGENERATION_WINDOW_S, spell: Spell | None = None) -> Export:
    """Read the database (one snapshot) and build the export in memory."""
    db = _connect(Path(db_path))
    try:
        db.execute("BEGIN")  # one consistent snapshot across the SELECTs
        poems, info = judge(db, window_s, spell)
        db.execute("ROLLBACK")
    finally:
        db.close()
    poems = merge_same_text(poems.values())
    out = Export()
    groups: dict[str, list[Judged]] = defaultdict(list)
    for j in poems.values():
        if j.label is None:
            continue
        heldout = is_heldout(j.prompt)
        (out.kto_heldout if heldout else out.kto).append(
            {
                "prompt": j.prompt,
                "completion": j.completion,
                "label": j.label,
                "weight": j.example_weight,
                "form": j.form,
                "opening": j.opening,
            }
        )
        groups[j.prompt].append(j)
    for prompt, items in groups.items():
        liked = sorted((j for j in items if j.label), key=lambda j: -j.score)
        disliked = sorted((j for j in items if j.label is False), key=lambda j: j.score)
        pairs = [(a, b) for a in liked for b in disliked][:MAX_PAIRS_PER_PROMPT]
        target = out.dpo_heldout if is_heldout(prompt) else out.dpo
        for a, b in pairs:
            target.append(
                {
                    "prompt": prompt,
                    "chosen": a.completion,
                    "rejected": b.completion,
                    "weight": min(a.example_weight, b.example_weight),
                    "form": a.form,
                    "opening": a.opening,
                }
            )
    out.summary = _summary(out, poems, info, window_s)
    return out


def _summary(out: Export, poems: dict[tuple[str, str], Judged], info: dict, window_s: float) -> dict:
    """summary.json: what the export holds and from which signals (`until` is the next round's starting point)."""
    labelled = [j for j in poems.values() if j.label is not None]
    return {
        "until": info["until"],
        "poems_with_signals": len(poems),
        "desirable": sum(1 for j in labelled if j.label),
        "undesirable": sum(1 for j in labelled if not j.label),
        "neutral": len(poems) - len(labelled),
        "ratings": sum(j.ratings for j in poems.values()),
        "implicit_signals": info["implicit_signals"],
        "kto": len(out.kto),
        "dpo": len(out.dpo),
        "kto_heldout": len(out.kto_heldout),
        "dpo_heldout": len(out.dpo_heldout),
        "weights": {
            "rating": 1.0,
            "regeneration": round(IMPLICIT_WEIGHT, 4),
            "max_example": MAX_WEIGHT,
            "regeneration_window_s": window_s,
        },
    }


def write(export: Export, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in zip(FILES, (export.kto, export.dpo, export.kto_heldout, export.dpo_heldout), strict=False):
        with open(out_dir / name, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    (out_dir / "summary.json").write_text(
        json.dumps(export.summary, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return out_dir


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def export(
    db_path: str | Path, out_dir: str | Path, window_s: float = REGENERATION_WINDOW_S, spell: Spell | None = None
) -> dict:
    """Build and write the export; returns its summary."""
    result = build(db_path, window_s, spell)
    write(result, out_dir)
    return result.summary


def spelling_of(model_dir: str | Path) -> Spell | None:
    """How a model spells the poems it learns from: its codec for a syllable-level model, else as written."""
    from engine.model_dir import read_model_info
    from engine.syllable_text import codec_for_model

    return codec_for_model(model_dir).to_model if read_model_info(model_dir).syllable_level else None
