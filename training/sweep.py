"""Sampling sweep: choose the model directory's default sampling settings (generation_config.json).

    python -m training sweep --model models/tho-gpt2-syl-r12a [--n-openings 50]   # 14 settings x 100 poems: minutes

Each combination of temperature / top-k / top-p / repetition penalty /
no-repeat n-gram size writes poems, with the decoding constraint, from
opening lines of validation-split poems (5 chữ and lục bát; the test split is
kept for `evaluate`), and its lines 2-4 are set beside the same poems' real
lines 2-4. A combination scores

    0.4 * checker total + 0.2 * variety + 0.2 * familiarity + 0.2 * indistinguishability
    variety              = min(1, distinct-2 / the real lines' distinct-2)
    familiarity          = max(0, 1 - |known bigrams - the real lines' known bigrams| / the real lines' known bigrams)
    indistinguishability = min(1, 2 * (1 - discriminator accuracy))

The checker rewards form; the other three reward text whose statistics are a
real poem's: distinct-2 below the real lines' is repetition, a known-bigram
rate (adjacent syllable pairs seen in the training split) above theirs is
stock phrases, below theirs word salad, and the discriminator (the one
`evaluate` reports) tells written lines from real ones by their syllables.
The model's own perplexity is deliberately not a term: it rewards the bland,
stock text low temperatures give, which readers and the discriminator spot.
Then best-of-n (`candidates`) is chosen for the winner: the smallest n
within 0.01 of the best total whose p50 latency stays under --latency-budget.
The result goes into generation_config.json with the keys
engine.settings.generation_defaults_from_config reads; the table into sweep.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from engine.engine import PoemEngine
from engine.request import PoemRequest
from engine.settings import SamplingSettings
from training import metrics
from training.corpus import read_split
from training.generate import eval_backend, latency, openings, training_line_set, write_all

SWEEP_FORMS = ("5chu", "lucbat")
# (temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size)
GRID: tuple[tuple[float, int, float, float, int], ...] = (
    (0.7, 40, 0.95, 1.1, 0),
    (0.8, 0, 0.9, 1.1, 0),
    (0.8, 40, 1.0, 1.1, 0),
    (0.9, 40, 0.95, 1.15, 0),
    (0.9, 0, 1.0, 1.0, 0),
    (0.9, 0, 0.95, 1.1, 0),
    (0.95, 0, 1.0, 1.0, 0),
    (1.0, 0, 0.9, 1.0, 0),
    (1.0, 0, 0.95, 1.0, 0),
    (1.0, 0, 0.95, 1.1, 0),
    (1.0, 0, 1.0, 1.0, 0),
    (1.0, 0, 1.0, 1.1, 0),
    (1.0, 0, 0.95, 1.0, 3),
    (1.1, 0, 0.95, 1.0, 0),
)
CANDIDATES = (1, 2, 4)
MIN_OPENINGS = 5  # per form: the discriminator's five cross-validation folds need five of each


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, help="data directory (default: <work>/data)")
    p.add_argument("--n-openings", type=int, default=50, help="openings per form")
    p.add_argument("--latency-budget", type=float, default=1.5, help="seconds, p50 for one 4-line poem")
    p.add_argument("--latency-requests", type=int, default=8)
    p.add_argument("--threads", type=int, default=0)


def settings_of(combo) -> SamplingSettings:
    t, k, p, r, n = combo
    return SamplingSettings(
        strategy="sample", temperature=t, top_k=k, top_p=p, repetition_penalty=r, no_repeat_ngram_size=n
    )


async def _write(model_dir: Path, items, settings: SamplingSettings, threads):
    backend = eval_backend(model_dir, threads)
    engine = await PoemEngine.create(backend)
    try:
        reqs = [PoemRequest(o.line, form=o.form, settings=settings.replace(seed=i)) for i, o in enumerate(items)]
        return await write_all(engine, reqs)
    finally:
        await engine.close()


def sweep(
    model_dir: Path,
    data_dir: Path,
    n_openings: int = 50,
    latency_budget: float = 1.5,
    latency_requests: int = 8,
    threads: int | None = None,
    grid=GRID,
    candidates=CANDIDATES,
) -> dict:
    """Score every combination of the grid, then best-of-n for the winner; write the defaults and sweep.json."""
    t0 = time.perf_counter()
    training_lines = training_line_set(read_split(data_dir / "train.jsonl"))
    by_form = openings(read_split(data_dir / "validation.jsonl"), training_lines, SWEEP_FORMS, n_openings)
    if min(len(v) for v in by_form.values()) < MIN_OPENINGS:
        raise ValueError(f"the sweep needs at least {MIN_OPENINGS} openings per form (the discriminator's folds)")
    items = [o for f in SWEEP_FORMS for o in by_form[f]]
    real = RealLines([list(o.reference) for o in items], metrics.bigrams_of(training_lines))
    rows = [_grid_row(model_dir, items, settings_of(combo), threads, real) for combo in grid]
    base = SamplingSettings.from_dict(max(rows, key=lambda r: r["score"])["settings"])
    by_n = [
        _candidates_row(model_dir, items, base.replace(candidates=n), latency_requests, threads) for n in candidates
    ]
    final = base.replace(candidates=_fewest_candidates(by_n, latency_budget))
    write_generation_config(model_dir, final)
    result = {
        "chosen": final.as_dict(),
        "real": {"distinct_2": round(real.distinct_2, 4), "known_bigrams": round(real.known_bigrams, 4)},
        "grid": rows,
        "candidates": by_n,
        "openings": len(items),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (model_dir / "sweep.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"chosen defaults: {json.dumps(final.as_dict())}")
    return result


@dataclass(frozen=True)
class RealLines:
    """The real lines 2-4 of the sweep's poems, and the training split's bigrams, to hold written lines against."""

    poems: list[list[str]]
    training_bigrams: set

    @cached_property
    def distinct_2(self) -> float:
        return metrics.distinct_n(self.poems, 2)

    @cached_property
    def known_bigrams(self) -> float:
        return metrics.known_bigram_rate([ln for p in self.poems for ln in p], self.training_bigrams)


def realism_score(
    total: float, distinct_2: float, known_bigrams: float, discriminator: float, real: RealLines
) -> float:
    """The sweep's score (module docstring): form, then how close the written lines' statistics are to real ones."""
    variety = min(1.0, distinct_2 / max(real.distinct_2, 1e-9))
    familiarity = max(0.0, 1 - abs(known_bigrams - real.known_bigrams) / max(real.known_bigrams, 1e-9))
    indistinguishability = min(1.0, 2 * (1 - discriminator))
    return 0.4 * total + 0.2 * variety + 0.2 * familiarity + 0.2 * indistinguishability


def _grid_row(model_dir: Path, items, settings: SamplingSettings, threads, real: RealLines) -> dict:
    """One combination, one candidate per poem: its figures and score (a row of sweep.json's grid)."""
    s = settings.replace(candidates=1)
    poems = asyncio.run(_write(model_dir, items, s, threads))
    total = sum(p.scores.total for p in poems) / len(poems)
    written = [list(p.lines[1:4]) for p in poems]
    d2 = metrics.distinct_n(written, 2)
    known = metrics.known_bigram_rate([ln for w in written for ln in w], real.training_bigrams)
    disc = metrics.discriminator_accuracy(["\n".join(w) for w in written], ["\n".join(r) for r in real.poems])
    score = realism_score(total, d2, known, disc, real)
    print(
        f"{json.dumps(s.as_dict())}: total {total:.3f} distinct-2 {d2:.3f} (real {real.distinct_2:.3f}) "
        f"known bigrams {known:.3f} (real {real.known_bigrams:.3f}) discriminator {disc:.3f} -> {score:.4f}"
    )
    return {
        "settings": s.as_dict(),
        "total": round(total, 4),
        "distinct_2": round(d2, 4),
        "known_bigrams": round(known, 4),
        "discriminator": round(disc, 4),
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
