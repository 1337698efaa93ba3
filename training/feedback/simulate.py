"""Proof that it learns: simulated raters with a hidden taste, through the real bot.

    python -m training feedback simulate --taste sea --rounds 3 --poems 300 [--model DIR] [--work build/simulate]

Each rater is a user of the real bot: `bot.core.Core` with the real `Store`
(a fresh SQLite file) and `PoemEngine` + `HFBackend`, started by
`bot.runtime.open_runtime` with its model watcher, exactly as a Telegram bot
runs.  A rater sends `/tho <opening>`, reads the poem, and rates it with the
star buttons: 4-5 stars when the poem (past the rater's own opening) holds a
word of the hidden taste, 1-3 otherwise; on a disliked poem it sometimes
presses `/tholai` instead, and sometimes rates the new poem too.

A round: the raters ask for and rate `--poems` poems; then
`training.feedback.loop.run_round` (what `python -m training feedback run`
does) exports, trains, gates, records and promotes; the running bot's watcher
swaps to the promoted model, which serves the next round.  The last round is
only measured.  Per round: the share of poems that match the taste, mean
stars, and the serving model's gate figures (cross-entropy per syllable,
constrained form totals, the free-decoding total).  Results go to <work>/simulate-<taste>.json.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.prompt import split_lines
from engine.prosody import syllables

if TYPE_CHECKING:
    from bot.config import Settings
    from training.feedback.loop import RoundSettings

TASTES: dict[str, frozenset[str]] = {
    # The sea: the example.
    "sea": frozenset(
        [
            "biển",
            "sóng",
            "thuyền",
            "bến",
            "khơi",
            "cát",
            "bờ",
            "buồm",
            "ghe",
            "cảng",
            "đảo",
            "hải",
            "triều",
            "chài",
            "lưới",
            "muối",
        ]
    ),
    # The moon and the night: common (in 24% of the 400 poems tho-gpt2-syl-r2 wrote from test openings).
    "moon": frozenset(["trăng", "đêm", "sao", "khuya", "nguyệt", "tối", "mờ", "sương"]),
    # Rain and storms: rare at the start, like the sea (7.5% of those poems; the sea 8%).
    "rain": frozenset(["mưa", "giông", "bão", "sấm", "chớp", "ướt", "dầm", "phùn"]),
}

# Our own opening lines (5 syllables -> 5 chữ, 6 -> lục bát), none with a taste word.
OPENINGS = [
    "Sáng nay trời trở gió",
    "Phố cũ mưa giăng mắc",
    "Bên hiên nhà mẹ đợi",
    "Con đò chiều lặng lẽ",
    "Tiếng ve gọi mùa hạ",
    "Mùa xuân về trên phố",
    "Quê hương mùa lúa chín",
    "Em đi qua ngõ nhỏ",
    "Chiều nay ta ngồi đợi",
    "Tóc mẹ đã bạc rồi",
    "Ngày xưa ta còn nhỏ",
    "Hàng cây đứng im lìm",
    "Lá rơi đầy lối cũ",
    "Ta về thăm phố núi",
    "Hoa gạo nở đầu làng",
    "Cánh cò bay lả lướt",
    "Đường về quê ngoại mùa đông",
    "Chiều nghiêng bóng nắng bên sông",
    "Mẹ ngồi vá áo bên thềm",
    "Gió đưa hương lúa qua đồng",
    "Người đi để lại câu thề",
    "Mùa thu lá đổ bên thềm",
    "Ai về xứ Huế cùng ta",
    "Lặng nghe tiếng hát ru hời",
    "Tháng giêng hoa nở khắp vườn",
    "Nhớ ai ngồi đợi bên cầu",
    "Cha đi cày sớm ngoài đồng",
    "Thương em áo trắng học trò",
]


@dataclass
class Rater:
    key: str
    taste: frozenset[str]
    rng: random.Random
    retry_rate: float

    def likes(self, text: str, opening: str) -> bool:
        written = split_lines(text)[1:]  # past the rater's own opening line
        return any(s.lower() in self.taste for line in written for s in syllables(line))

    def stars(self, liked: bool) -> int:
        return self.rng.choice((4, 5, 5)) if liked else self.rng.choice((1, 2, 2, 3))


async def rate_round(core, store, raters: list[Rater], n_poems: int, concurrency: int, seed: int) -> dict:
    """The raters ask for and rate `n_poems` poems through the core; what they saw and gave."""
    rng = random.Random(seed)
    plan = [(raters[i % len(raters)], rng.choice(OPENINGS)) for i in range(n_poems)]
    gate = asyncio.Semaphore(concurrency)
    seen: list[tuple[bool, str]] = []
    given: list[int] = []
    retries = 0

    async def one(rater: Rater, opening: str) -> None:
        nonlocal retries
        async with gate:
            reply = await core.command(rater.key, "tho", opening)
            if reply.poem_id is None:
                return
            poem = await store.get_poem(reply.poem_id)
            liked = rater.likes(poem.text, opening)
            seen.append((liked, poem.model_version))
            if not liked and rater.rng.random() < rater.retry_rate:
                # Not this one: ask again at once (the core records the /tholai) and maybe rate the new one.
                again = await core.command(rater.key, "tholai")
                retries += 1
                if again.poem_id is not None:
                    new = await store.get_poem(again.poem_id)
                    liked_new = rater.likes(new.text, opening)
                    seen.append((liked_new, new.model_version))
                    if rater.rng.random() < 0.5:
                        stars = rater.stars(liked_new)
                        await core.action(rater.key, f"rate:{again.poem_id}:{stars}")
                        given.append(stars)
                return
            stars = rater.stars(liked)
            await core.action(rater.key, f"rate:{reply.poem_id}:{stars}")  # the star button under the poem
            given.append(stars)

    # One rater's requests run one after another (as a person's would); raters run side by side.
    by_rater: dict[str, list] = {}
    for rater, opening in plan:
        by_rater.setdefault(rater.key, []).append((rater, opening))

    async def person(items) -> None:
        for rater, opening in items:
            await one(rater, opening)

    await asyncio.gather(*(person(items) for items in by_rater.values()))
    versions = sorted({v for _, v in seen})
    return {
        "poems": len(seen),
        "taste_share": round(sum(1 for liked, _ in seen if liked) / max(1, len(seen)), 4),
        "mean_stars": round(sum(given) / max(1, len(given)), 3),
        "ratings": len(given),
        "tholai": retries,
        "model_versions": versions,
    }


def _setup(args) -> tuple[Path, RoundSettings, Settings]:
    """A fresh database in the work directory; the rounds' settings and the bot's, both pointing at it."""
    from bot.config import Settings
    from training.feedback.loop import settings_from_args

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"simulate-{args.taste}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    args.db = db
    round_settings = settings_from_args(args)
    round_settings.models_dir = args.models_dir or work / f"models-{args.taste}"
    round_settings.work = work / f"rounds-{args.taste}"
    settings_kwargs = {"THO_DB": db, "THO_MODEL_WATCH_SECONDS": 0.5, "THO_POEMS_PER_MINUTE": 600}
    if args.model:
        settings_kwargs["THO_MODEL"] = args.model
    settings = Settings(**settings_kwargs)
    round_settings.model = settings.model
    return work, round_settings, settings


async def _swapped(engine, version: str) -> bool:
    """Whether the running engine serves `version` within a minute (the watcher swaps within
    THO_MODEL_WATCH_SECONDS)."""
    for _ in range(600):
        if engine.model_version == version:
            return True
        await asyncio.sleep(0.1)
    return engine.model_version == version


async def simulate(args) -> dict:
    from bot.runtime import open_runtime
    from training.feedback.loop import run_round

    # Before anything runs on the loop: plain blocking set-up is fine here.
    work, round_settings, settings = _setup(args)
    master = random.Random(args.seed)
    raters = [
        Rater(f"console:rater{i}", TASTES[args.taste], random.Random(master.random()), args.retry_rate)
        for i in range(args.raters)
    ]
    report: dict = {"taste": args.taste, "taste_words": sorted(TASTES[args.taste]), "rounds": []}
    async with open_runtime(settings) as rt:
        for k in range(args.rounds + 1):
            t0 = time.perf_counter()
            serving = rt.engine.model_version
            seen = await rate_round(rt.core, rt.store, raters, args.poems, args.concurrency, args.seed * 1000 + k)
            row = {"round": k, "serving": serving, **seen, "seconds_rating": round(time.perf_counter() - t0, 1)}
            print(
                f"round {k}: {serving} wrote {seen['poems']} poems, taste share {seen['taste_share']:.1%}, "
                f"mean stars {seen['mean_stars']}",
                flush=True,
            )
            if k < args.rounds:
                t1 = time.perf_counter()
                result = await run_round(round_settings)
                print(result.message, flush=True)
                row.update(
                    {
                        "round_status": result.status,
                        "candidate": result.version,
                        "seconds_round": round(time.perf_counter() - t1, 1),
                    }
                )
                if result.status == "promoted":
                    row["swapped"] = await _swapped(rt.engine, result.version)
            report["rounds"].append(row)
        figures = {v.version: v.metrics.get("figures", {}) for v in await rt.store.list_model_versions()}
        statuses = {v.version: v.status for v in await rt.store.list_model_versions()}
    for row in report["rounds"]:
        f = figures.get(row["serving"], {})
        row["ce_per_syllable"] = f.get("ce_per_syllable")
        row["constrained_total"] = f.get("constrained_total")
        row["unconstrained_total"] = f.get("unconstrained_total")
    report["model_versions"] = statuses
    first, last = report["rounds"][0]["taste_share"], report["rounds"][-1]["taste_share"]
    report["taste_share_ratio"] = round(last / first, 2) if first else None
    out = work / f"simulate-{args.taste}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(table(report))
    print(f"written {out}")
    return report


def table(report: dict) -> str:
    rows = [
        f"taste {report['taste']}: " + ", ".join(report["taste_words"]),
        "| round | serving model | poems | taste share | mean ★ | CE/syllable | constrained total | free total "
        "| round result |",
        "| --: | --- | --: | --: | --: | --: | --- | --: | --- |",
    ]
    for r in report["rounds"]:
        totals = " ".join(f"{f} {v:.3f}" for f, v in (r.get("constrained_total") or {}).items())
        ce = f"{r['ce_per_syllable']:.4f}" if r.get("ce_per_syllable") is not None else "-"
        free = f"{r['unconstrained_total']:.3f}" if r.get("unconstrained_total") is not None else "-"
        rows.append(
            f"| {r['round']} | {r['serving']} | {r['poems']} | {r['taste_share']:.1%} | {r['mean_stars']} | "
            f"{ce} | {totals or '-'} | {free} | {r.get('round_status', '(measured only)')} |"
        )
    rows.append(f"taste share, last round / round 0: {report['taste_share_ratio']}")
    return "\n".join(rows)


def add_arguments(p) -> None:
    from training.feedback.loop import add_train_arguments

    p.add_argument("--taste", choices=sorted(TASTES), default="sea")
    p.add_argument("--rounds", type=int, default=3, help="training rounds (one more round is measured at the end)")
    p.add_argument("--poems", type=int, default=300, help="poems the raters ask for per round")
    p.add_argument("--raters", type=int, default=8)
    p.add_argument("--retry-rate", type=float, default=0.3, help="chance a rater presses /tholai on a disliked poem")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument(
        "--sim-work",
        dest="sim_work",
        type=Path,
        default=None,
        help="where the database, rounds and candidates go (default <work>/simulate)",
    )
    add_train_arguments(p)
    p.set_defaults(min_new=20)


def run(args) -> int:
    args.work = args.sim_work or Path(args.work) / "simulate"
    asyncio.run(simulate(args))
    return 0
