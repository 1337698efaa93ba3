"""Sampling sweep: choose the model directory's default sampling settings (generation_config.json).

    python -m training sweep --model models/tho-gpt2-cpu [--n-openings 10]

Each combination of temperature / top-k / top-p / repetition penalty /
no-repeat n-gram size writes poems, with the decoding constraint, from
opening lines of validation-split poems (5 chữ and lục bát; the test split is
kept for `evaluate`). A combination scores

    0.4 * checker total + 0.2 * distinct-2 + 0.2 * fluency + 0.2 * known syllables,
    fluency = 1 - ln(perplexity) / ln(vocabulary size)

where perplexity is the model's own of the lines it wrote (1 for text it is
certain of, 0 for uniform guessing) and known syllables the share of written
syllables seen in the training split: the checker rewards form, distinct-2
punishes repetition, fluency punishes the incoherent text high temperatures
give, known syllables the non-words the constraint can force. Then
best-of-n (`candidates`) is chosen for the winner: the smallest n
within 0.01 of the best total whose p50 latency stays under --latency-budget.
The result goes into generation_config.json with the keys
engine.settings.generation_defaults_from_config reads; the table into sweep.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path

from engine.backends.hf import HFBackend
from engine.engine import PoemEngine
from engine.request import PoemRequest
from engine.settings import SamplingSettings
from training import metrics
from training.corpus import read_split
from training.generate import known_syllables, latency, openings, training_line_set, write_all
from training.likelihood import PoemScorer as Scorer

SWEEP_FORMS = ("5chu", "lucbat")
# (temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size)
GRID: tuple[tuple[float, int, float, float, int], ...] = (
    (0.5, 40, 1.0, 1.1, 0),
    (0.6, 0, 0.9, 1.1, 0),
    (0.6, 40, 0.95, 1.1, 0),
    (0.7, 40, 0.95, 1.1, 0),
    (0.8, 0, 0.9, 1.0, 0),
    (0.8, 0, 0.9, 1.1, 0),
    (0.8, 0, 0.9, 1.2, 0),
    (0.8, 40, 1.0, 1.1, 0),
    (0.8, 0, 0.95, 1.1, 3),
    (0.9, 50, 0.95, 1.1, 0),
    (1.0, 0, 0.9, 1.1, 0),
    (1.0, 40, 0.95, 1.2, 0),
    (1.2, 0, 0.8, 1.1, 0),
)
CANDIDATES = (1, 2, 4)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, help="data directory (default: <work>/data)")
    p.add_argument("--n-openings", type=int, default=20, help="openings per form")
    p.add_argument("--latency-budget", type=float, default=1.5, help="seconds, p50 for one 4-line poem")
    p.add_argument("--latency-requests", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)


def settings_of(combo) -> SamplingSettings:
    t, k, p, r, n = combo
    return SamplingSettings(
        strategy="sample", temperature=t, top_k=k, top_p=p, repetition_penalty=r, no_repeat_ngram_size=n
    )


async def _write(model_dir: Path, items, settings: SamplingSettings, threads):
    backend = HFBackend(model_dir, threads=threads)
    engine = await PoemEngine.create(backend)
    try:
        reqs = [PoemRequest(o.line, form=o.form, settings=settings.replace(seed=i)) for i, o in enumerate(items)]
        return await write_all(engine, reqs)
    finally:
        await engine.close()


def sweep(
    model_dir: Path,
    data_dir: Path,
    n_openings: int = 10,
    latency_budget: float = 1.5,
    latency_requests: int = 8,
    threads: int | None = None,
    grid=GRID,
    candidates=CANDIDATES,
) -> dict:
    """Score every combination of the grid, then best-of-n for the winner; write the defaults and sweep.json."""
    t0 = time.perf_counter()
    training_lines = training_line_set(read_split(data_dir / "train.jsonl"))
    known = known_syllables(training_lines)
    by_form = openings(read_split(data_dir / "validation.jsonl"), training_lines, SWEEP_FORMS, n_openings)
    items = [o for f in SWEEP_FORMS for o in by_form[f]]
    scorer = Scorer(model_dir)
    rows = [_grid_row(model_dir, items, settings_of(combo), threads, scorer, known) for combo in grid]
    base = SamplingSettings.from_dict(max(rows, key=lambda r: r["score"])["settings"])
    by_n = [
        _candidates_row(model_dir, items, base.replace(candidates=n), latency_requests, threads) for n in candidates
    ]
    final = base.replace(candidates=_fewest_candidates(by_n, latency_budget))
    write_generation_config(model_dir, final)
    result = {
        "chosen": final.as_dict(),
        "grid": rows,
        "candidates": by_n,
        "openings": len(items),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (model_dir / "sweep.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"chosen defaults: {json.dumps(final.as_dict())}")
    return result


def _grid_row(model_dir: Path, items, settings: SamplingSettings, threads, scorer: Scorer, known) -> dict:
    """One combination, one candidate per poem: its figures and score (a row of sweep.json's grid)."""
    s = settings.replace(candidates=1)
    poems = asyncio.run(_write(model_dir, items, s, threads))
    total = sum(p.scores.total for p in poems) / len(poems)
    d2 = metrics.distinct_n([list(p.lines[1:]) for p in poems], 2)
    ppl = scorer.perplexity([(p.form, list(p.lines)) for p in poems])
    fluency = max(0.0, 1 - math.log(ppl) / math.log(len(scorer.tokenizer)))
    words = metrics.known_syllable_rate([ln for p in poems for ln in p.lines[1:]], known)
    score = 0.4 * total + 0.2 * d2 + 0.2 * fluency + 0.2 * words
    print(
        f"{json.dumps(s.as_dict())}: total {total:.3f} distinct-2 {d2:.3f} ppl {ppl:.1f} "
        f"known syllables {words:.3f} -> {score:.4f}"
    )
    return {
        "settings": s.as_dict(),
        "total": round(total, 4),
        "distinct_2": round(d2, 4),
        "perplexity": round(ppl, 2),
        "known_syllables": round(words, 4),
        "score": round(score, 4),
    }


def _candidates_row(model_dir: Path, items, s: SamplingSettings, latency_requests: int, threads) -> dict:
    """The checker total and p50 latency of best-of-`s.candidates`."""
    poems = asyncio.run(_write(model_dir, items, s, threads))
    total = sum(p.scores.total for p in poems) / len(poems)
    lat = asyncio.run(latency(model_dir, s, latency_requests, [(o.form, o.line) for o in items], threads))
    print(f"candidates {s.candidates}: total {total:.3f}, p50 {lat['p50_s']} s")
    return {"candidates": s.candidates, "total": round(total, 4), "p50_s": lat["p50_s"]}


def _fewest_candidates(by_n: list[dict], latency_budget: float) -> int:
    """The smallest n within 0.01 of the best total among those under the latency budget (or the fastest)."""
    top = max(r["total"] for r in by_n)
    fitting = [r for r in by_n if r["p50_s"] <= latency_budget] or [min(by_n, key=lambda r: r["p50_s"])]
    chosen = next((r for r in fitting if r["total"] >= top - 0.01), max(fitting, key=lambda r: r["total"]))
    return chosen["candidates"]


def write_generation_config(model_dir: Path, s: SamplingSettings) -> None:
    """generation_config.json with standard keys plus tho_candidates / tho_strategy."""
    path = model_dir / "generation_config.json"
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config.update(
        {
            "do_sample": s.strategy == "sample",
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "repetition_penalty": s.repetition_penalty,
            "no_repeat_ngram_size": s.no_repeat_ngram_size,
            "tho_candidates": s.candidates,
            "tho_strategy": s.strategy,
        }
    )
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def run(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return sweep(
        args.model,
        args.data or Path(args.work) / "data",
        args.n_openings,
        args.latency_budget,
        args.latency_requests,
        args.threads or None,
    )
