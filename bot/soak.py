"""Soak benchmark: many simulated users for many minutes through the real core, store and engine.

    python -m bot.soak [--model DIR] [--backend hf] [--users 200] [--minutes 10] [--heavy-share 0.1]
                       [--think 60] [--db FILE] [--json FILE]

Each simulated user is a task that asks for a poem (`/tho`, now and then `/tholai`), rates some of
them, and waits a random think time (exponential, mean `--think` seconds) before the next request.
A share of the users (`--heavy-share`) first set the heaviest settings the bot allows (candidates x
beams x stanzas = THO_MAX_WORK, in three shapes). Everything goes through `Core.command` and
`Core.action`, as on Telegram or Discord, with the configuration from the environment (THO_*).

It prints, for ordinary and heavy users apart: poems written, latency p50/p95/p99 (queueing
included), the refusals by kind (busy, rate limit, overload, deadline, too heavy), errors (an
exception or a failed reply), and the process's RSS (children included) minute by minute, at
minute 2 and at the end. The database is a temporary file unless `--db` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bot import texts
from bot.config import Settings
from bot.runtime import open_runtime

OPENINGS = [
    "Mùa thu lá vàng rơi",
    "Sáng nay trời trở gió",
    "Phố cũ mưa giăng mắc",
    "Bên hiên nhà mẹ đợi",
    "Con đò chiều lặng lẽ",
    "Tiếng ve gọi mùa hạ",
    "Trăm năm trong cõi người ta",
    "Đường về quê ngoại mùa đông",
    "Chiều nghiêng bóng nắng bên sông",
    "Mẹ ngồi vá áo bên thềm",
    "Sông quê lặng lẽ trôi xa",
    "Gió đưa hương lúa qua đồng",
    "Em về trong nắng chiều phai nhạt",
    "Đêm nay trăng sáng trên đồi vắng",
    "Hà Nội mùa thu phố cũ rêu phong",
    "Biển xanh sóng vỗ bờ cát trắng",
    "Quê hương",
    "Nhớ mẹ",
]
# The heaviest shapes allowed under THO_MAX_WORK (work = candidates x beams x stanzas), filled in at start.
HEAVY_SHAPES = ("candidates", "beam", "stanzas")
RATE_SHARE = 0.5  # share of poems a user rates
THOLAI_SHARE = 0.2  # share of requests that are /tholai
SAMPLE_SECONDS = 5.0  # RSS sampling period
START_SPREAD_SECONDS = 30.0  # users join over at least this time (over a think time when that is longer)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    # Streaming (poems of one candidate): seconds until the model's first line was on screen.
    first_lines: list[float] = field(default_factory=list)
    # The slowest streamed poem: (seconds, lines shown so far) at each line, then the whole poem.
    slowest_stream: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    refusals: Counter = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        return {
            "poems": len(lat),
            "p50_s": _percentile(lat, 0.50),
            "p95_s": _percentile(lat, 0.95),
            "p99_s": _percentile(lat, 0.99),
            "max_s": round(lat[-1], 3) if lat else None,
            "mean_s": round(statistics.fmean(lat), 3) if lat else None,
            "first_line_p50_s": _percentile(self.first_lines, 0.50),
            "first_line_p95_s": _percentile(self.first_lines, 0.95),
            "refusals": dict(self.refusals),
            "errors": self.errors,
            "error_samples": self.error_samples[:5],
        }


def _percentile(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3) if ordered else None


def heavy_settings(max_work: int, shape: str) -> list[str]:
    """/caidat arguments for one heavy shape whose work is as close to max_work as allowed."""
    if shape == "candidates":
        return [f"ungvien {min(16, max_work)}"]
    if shape == "beam":
        beams = min(8, max_work)
        return [f"sochum {beams}", f"ungvien {max(1, min(16, max_work // beams))}", "chienluoc chum"]
    stanzas = min(4, max_work)
    return [f"kho {stanzas}", f"ungvien {max(1, min(16, max_work // stanzas))}"]


def classify(reply) -> str | None:
    """The kind of refusal a reply is, or None for a poem."""
    if reply.poem_id is not None:
        return None
    if reply.text == texts.BUSY:
        return "busy"
    if reply.text == texts.OVERLOADED:
        return "overloaded"
    if reply.text.startswith(texts.RATE_LIMITED.split("{")[0]):
        return "rate_limited"
    if reply.text.startswith(texts.POEM_TIMEOUT.split("{")[0]):
        return "deadline"
    if reply.text.startswith(texts.TOO_HEAVY.split("{")[0]):
        return "too_heavy"
    return "other:" + reply.text[:60]


def rss_mb() -> float:
    process = psutil.Process(os.getpid())
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


async def user_loop(core, user: str, tally: Tally, end: float, think: float, rng: random.Random) -> None:
    # First requests spread like the later ones (a user arrives at a random moment of a think time), so the
    # run measures the steady state, not a crowd that all arrives in the first seconds.
    await asyncio.sleep(rng.uniform(0, max(START_SPREAD_SECONDS, min(think, end - time.monotonic()))))
    has_poem = False
    while time.monotonic() < end:
        started = time.monotonic()
        shown: list[tuple[float, tuple[str, ...]]] = []
        on_lines = functools.partial(_note_lines, shown, started)
        opening = None if has_poem and rng.random() < THOLAI_SHARE else rng.choice(OPENINGS)
        try:
            if opening is None:
                reply = await core.command(user, "tholai", on_lines=on_lines)
            else:
                reply = await core.command(user, "tho", opening, on_lines=on_lines)
        except Exception as exc:  # the core must never raise: count it
            tally.errors += 1
            tally.error_samples.append(f"{type(exc).__name__}: {exc}")
            reply = None
        elapsed = time.monotonic() - started
        if reply is not None:
            kind = classify(reply)
            if reply.failed:
                tally.errors += 1
                tally.error_samples.append(reply.text)
            elif kind is None:
                has_poem = True
                tally.latencies.append(elapsed)
                # The first line the model wrote (a whole opening line is shown before it).
                written = [t for t, lines in shown if opening is not None and lines != (opening,)]
                if written:
                    tally.first_lines.append(written[0])
                if shown and elapsed > (tally.slowest_stream[-1][0] if tally.slowest_stream else 0.0):
                    tally.slowest_stream = [*shown, (elapsed, tuple(reply.text.split("\n")))]
                if rng.random() < RATE_SHARE:
                    rated = await core.action(user, reply.buttons[0][rng.randrange(5)].action)
                    if rated.error:
                        tally.errors += 1
                        tally.error_samples.append("rating: " + rated.text)
            else:
                tally.refusals[kind] += 1
        pause = rng.expovariate(1 / think) if think > 0 else 0.0
        await asyncio.sleep(max(0.0, min(pause, end - time.monotonic())))  # never past the end


def _note_lines(shown: list, started: float, lines: tuple[str, ...]) -> None:
    shown.append((time.monotonic() - started, lines))


async def sample_rss(samples: list[tuple[float, float]], start: float, end: float) -> None:
    while True:
        samples.append((time.monotonic() - start, rss_mb()))
        if time.monotonic() >= end:
            return
        await asyncio.sleep(SAMPLE_SECONDS)


def rss_at(samples: list[tuple[float, float]], seconds: float) -> float | None:
    before = [mb for t, mb in samples if t <= seconds]
    return round(before[-1], 1) if before else None


async def soak(settings: Settings, users: int, minutes: float, heavy_share: float, think: float, seed: int) -> dict:
    rng = random.Random(seed)
    async with open_runtime(settings, watch=False) as runtime:
        core = runtime.core
        n_heavy = round(users * heavy_share)
        keys = [f"console:soak-{i}" for i in range(users)]
        for i, key in enumerate(keys[:n_heavy]):
            for args in heavy_settings(core.max_work, HEAVY_SHAPES[i % len(HEAVY_SHAPES)]):
                reply = await core.command(key, "caidat", args)
                if reply.error:
                    raise RuntimeError(f"heavy setting refused: /caidat {args}: {reply.text}")
        ordinary, heavy = Tally(), Tally()
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        end = start + minutes * 60
        sampler = asyncio.create_task(sample_rss(samples, start, end))
        await asyncio.gather(
            *(
                user_loop(core, key, heavy if i < n_heavy else ordinary, end, think, random.Random(rng.random()))
                for i, key in enumerate(keys)
            )
        )
        duration = time.monotonic() - start
        await sampler
        per_minute = {str(m): rss_at(samples, m * 60) for m in range(0, int(duration // 60) + 1)}
        return {
            "users": users,
            "heavy_users": n_heavy,
            "minutes": minutes,
            "think_s": think,
            "duration_s": round(duration, 1),
            "model": runtime.engine.model_version,
            "backend": settings.backend,
            "max_work": core.max_work,
            "poem_timeout_s": core.poem_timeout_seconds,
            "poems_per_minute_limit": core.poems_per_minute,
            "cpu_count": os.cpu_count(),
            "ordinary": ordinary.summary(),
            "heavy": heavy.summary(),
            "errors": ordinary.errors + heavy.errors,
            "slowest_stream": [[round(t, 3), list(lines)] for t, lines in ordinary.slowest_stream],
            "rss_mb": {
                "minute_2": rss_at(samples, 120),
                "end": round(samples[-1][1], 1),
                "peak": round(max(mb for _, mb in samples), 1),
                "per_minute": per_minute,
            },
            "limiter_users_remembered": len(core.limiter),
            "in_flight_at_end": core.in_flight,
        }


def render(result: dict) -> str:
    def line(name: str, s: dict) -> str:
        return (
            f"{name}: {s['poems']} poems, p50 {s['p50_s']} s, p95 {s['p95_s']} s, p99 {s['p99_s']} s, "
            f"first line p50 {s['first_line_p50_s']} s p95 {s['first_line_p95_s']} s, "
            f"max {s['max_s']} s; refused {s['refusals'] or 'none'}; errors {s['errors']}"
        )

    rss = result["rss_mb"]
    return "\n".join(
        [
            f"soak: {result['users']} users ({result['heavy_users']} heavy, work {result['max_work']}) for "
            f"{result['duration_s'] / 60:.1f} min, think {result['think_s']:g} s, model {result['model']} "
            f"({result['backend']}), {result['cpu_count']} CPUs",
            line("ordinary", result["ordinary"]),
            line("heavy", result["heavy"]),
            f"errors: {result['errors']}",
            "slowest streamed poem (seconds after the request: what the user saw):",
            *(f"  {t:6.2f} s  {' / '.join(lines)}" for t, lines in result["slowest_stream"]),
            f"RSS MB: minute 2 {rss['minute_2']}, end {rss['end']}, peak {rss['peak']}; per minute {rss['per_minute']}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (overrides THO_MODEL)")
    parser.add_argument("--backend", default="hf", help="hf | vllm | remote (default hf)")
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--heavy-share", type=float, default=0.1)
    parser.add_argument("--think", type=float, default=60.0, help="mean seconds between a user's requests")
    parser.add_argument("--db", help="SQLite file (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="tho-soak-") as tmp:
        overrides = {
            "THO_BACKEND": args.backend,
            "THO_DB": args.db or str(Path(tmp) / "soak.db"),
            "THO_MODEL_WATCH_SECONDS": 0,
        }
        if args.model:
            overrides["THO_MODEL"] = args.model
        settings = Settings(**overrides)
        result = asyncio.run(soak(settings, args.users, args.minutes, args.heavy_share, args.think, args.seed))
    print(render(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
