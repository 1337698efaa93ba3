"""Writing poems with a model directory through the real engine (PoemEngine + HFBackend), for evaluation.

Openings come from held-out poems: the first line of a test-split poem whose
first stanza has the form, and whose first line occurs nowhere in the
training split; the real continuation (lines 2-4) is kept as the reference.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from engine.backends.hf import DEFAULT_TORCH_THREADS, HFBackend
from engine.bench import percentile
from engine.engine import PoemEngine
from engine.forms import LINES_PER_STANZA, check, label_form
from engine.request import Poem, PoemRequest
from engine.settings import SamplingSettings
from training.corpus import CleanPoem, poem_key_text


@dataclass(frozen=True)
class Opening:
    form: str
    line: str
    reference: tuple[str, ...]  # the poem's real lines 2-4


def openings(
    test: list[CleanPoem], training_lines: set[str], forms: tuple[str, ...], per_form: int
) -> dict[str, list[Opening]]:
    """Up to `per_form` openings per form, in the split's (hash) order: deterministic."""
    out: dict[str, list[Opening]] = {f: [] for f in forms}
    seen: set[str] = set()
    for poem in test:
        stanza = list(poem.lines[:LINES_PER_STANZA])
        if len(stanza) < LINES_PER_STANZA:
            continue
        form = label_form(stanza)
        key = poem_key_text(stanza[0])
        if form not in out or len(out[form]) >= per_form or key in training_lines or key in seen:
            continue
        seen.add(key)
        out[form].append(Opening(form, stanza[0], tuple(stanza[1:])))
    return out


def training_line_set(train: list[CleanPoem]) -> set[str]:
    return {poem_key_text(ln) for p in train for ln in p.lines}


def known_syllables(training_lines: set[str], min_count: int = 3) -> set[str]:
    """Syllables (lower case) written at least `min_count` times in the training split's lines."""
    counts: dict[str, int] = {}
    for line in training_lines:
        for w in line.split():
            counts[w] = counts.get(w, 0) + 1
    return {w for w, n in counts.items() if n >= min_count}


async def write_all(engine: PoemEngine, requests: list[PoemRequest], concurrency: int = 16) -> list[Poem]:
    """Write every request, `concurrency` at a time (the backend batches them together)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(req: PoemRequest) -> Poem:
        async with gate:
            return await engine.write(req)

    return await asyncio.gather(*(one(r) for r in requests))


def score_unconstrained(poem: Poem) -> tuple[list[str], dict]:
    """Free decoding knows no line count: score its first stanza's worth of lines."""
    lines = list(poem.lines[: poem.stanzas * LINES_PER_STANZA])
    return lines, check(lines, poem.form, poem.stanzas).as_dict()


def eval_backend(model_dir: Path, threads: int | None) -> HFBackend:
    """The HF backend the training tools write with: --threads N, or (0 / None) the thread count the bot
    serves with. Passing None on to HFBackend would leave torch's own choice (both cores here), which is
    not what the bot runs: evaluate's and sweep's latency figures measured a setting nobody serves."""
    return HFBackend(model_dir, threads=threads or DEFAULT_TORCH_THREADS)


async def latency(
    model_dir: Path,
    settings: SamplingSettings,
    n: int = 20,
    form_openings: list[tuple[str, str]] = (),
    threads: int | None = None,
) -> dict:
    """Seconds for one 4-line poem for one user (requests one after another): p50 and p90."""
    backend = eval_backend(model_dir, threads)
    engine = await PoemEngine.create(backend)
    try:
        await engine.write(PoemRequest(form_openings[0][1], form=form_openings[0][0], settings=settings))  # warm-up
        times = []
        for i in range(n):
            form, line = form_openings[i % len(form_openings)]
            t = time.perf_counter()
            await engine.write(PoemRequest(line, form=form, settings=settings.replace(seed=i)))
            times.append(time.perf_counter() - t)
    finally:
        await engine.close()
    return {
        "n": n,
        "p50_s": round(percentile(times, 50), 3),
        "p90_s": round(percentile(times, 90), 3),
        "mean_s": round(sum(times) / n, 3),
    }
