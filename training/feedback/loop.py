"""One round of learning from ratings: export -> train -> evaluate -> gate -> record -> promote.

    python -m training feedback run --db data/tho.db [--method kto] [--steps 60] [--min-new 50]

1. Count the signals (ratings set or changed, /tholai presses) newer than the
   last round's export (kept in model_versions' metrics).  Too few: say so,
   change nothing.
2. Export (training.feedback.export) into <work>/feedback/<version>/export.
3. Fine-tune the serving model with TRL (training.feedback.retrain) into
   <models>/<version>, with a replay sample of the corpus's training split.
4. Measure the serving model and the candidate; the gate (training.feedback.gate).
5. Record the candidate in model_versions with every figure (status
   'candidate'; 'rejected' if the gate fails).
6. Promote if it passed: record it as the serving model, exactly what
   `python -m bot swap` does; every running bot swaps to it live.

The database is written only through the bot's Store (the schema's owner).
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.model_dir import read_model_info
from engine.prompt import format_poem
from training.corpus import DEFAULT_CORPUS, chunks, prepare_files, read_split
from training.feedback import export as fx
from training.feedback.gate import EvalSettings, GateResult, evaluate_pair
from training.feedback.retrain import TrainSettings, retrain

MIN_NEW_SIGNALS = 50
MIN_TRAIN_EXAMPLES = 8
MIN_HELDOUT_PAIRS = 4
REPLAY_POEMS = 2000
OUTCOMES = {  # a round's status -> what it tells the operator
    "promoted": "{version} passed the gate and is now the serving model",
    "candidate": "{version} passed the gate; recorded as a candidate (not promoted)",
    "rejected": "{version} failed the gate; recorded as rejected, {parent} keeps serving",
}


@dataclass
class RoundSettings:
    db: Path
    work: Path = Path("build")
    models_dir: Path | None = None  # default <work>/feedback/models
    model: Path | None = None  # serving model when the database names none
    min_new: int = MIN_NEW_SIGNALS
    min_examples: int = MIN_TRAIN_EXAMPLES
    min_heldout_pairs: int = MIN_HELDOUT_PAIRS
    replay_poems: int = REPLAY_POEMS
    promote: bool = True
    train: TrainSettings = field(default_factory=TrainSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)


@dataclass
class RoundResult:
    status: str  # skipped | rejected | promoted | candidate
    message: str
    version: str | None = None
    path: Path | None = None
    metrics: dict = field(default_factory=dict)


def ensure_data(data_dir: Path) -> Path:
    """The cleaned splits (`python -m training data`), made from the shared corpus when missing."""
    if not (data_dir / "test.jsonl").is_file() or not (data_dir / "train.jsonl").is_file():
        print(f"no splits in {data_dir}: preparing them from {DEFAULT_CORPUS}")
        prepare_files([DEFAULT_CORPUS], data_dir)
    return data_dir


def replay_texts(data_dir: Path, n: int, seed: int) -> list[str]:
    """A random sample of training-split chunks, written as the model was trained on them."""
    if n <= 0:
        return []
    poems = read_split(data_dir / "train.jsonl")
    texts = [
        format_poem(form, lines)
        for poem in random.Random(seed).sample(poems, min(len(poems), n))
        for form, lines in chunks(poem)[:1]
    ]
    return texts[:n]


def next_version(parent: str, taken: set[str], models_dir: Path) -> str:
    """tho-gpt2-cpu -> tho-gpt2-cpu-fb1 -> tho-gpt2-cpu-fb2 ... (never an existing name or directory)."""
    m = re.fullmatch(r"(.*)-fb(\d+)", parent)
    root, n = (m.group(1), int(m.group(2))) if m else (parent, 0)
    while True:
        n += 1
        version = f"{root}-fb{n}"
        if version not in taken and not (models_dir / version).exists():
            return version


async def _serving(store, settings: RoundSettings) -> tuple[str, Path]:
    serving = await store.serving_model()
    if serving is not None:
        return serving.version, Path(serving.path)
    if settings.model is None:
        from bot.config import default_model_dir

        settings.model = default_model_dir()
    info = read_model_info(settings.model)
    return info.version, info.path


def last_export_until(versions) -> str | None:
    stamps = [v.metrics.get("feedback", {}).get("until") for v in versions]
    return max((s for s in stamps if s), default=None)


async def run_round(settings: RoundSettings) -> RoundResult:
    """One round, steps 1-6 above; a round with too little feedback changes nothing."""
    from bot.store import Store

    async with Store(settings.db) as store:
        versions = await store.list_model_versions()
        parent, parent_dir = await _serving(store, settings)
    since = last_export_until(versions)
    new = fx.count_new_signals(settings.db, since)
    if new < settings.min_new:
        return RoundResult(
            "skipped",
            f"too little new feedback: {new} new ratings and /tholai since "
            f"{since or 'the start'}, a round needs {settings.min_new}; nothing changed",
        )
    models_dir = settings.models_dir or settings.work / "feedback" / "models"
    version = next_version(parent, {v.version for v in versions}, models_dir)
    round_dir = settings.work / "feedback" / version
    export = fx.build(settings.db, spell=fx.spelling_of(parent_dir))  # in the serving model's own spelling
    fx.write(export, round_dir / "export")
    summary = export.summary
    train_rows = export.kto if settings.train.method == "kto" else export.dpo
    if len(train_rows) < settings.min_examples or len(export.dpo_heldout) < settings.min_heldout_pairs:
        return RoundResult(
            "skipped",
            f"too little feedback to learn from: {len(train_rows)} "
            f"{settings.train.method} training examples (need {settings.min_examples}), "
            f"{len(export.dpo_heldout)} held-out pairs (need {settings.min_heldout_pairs});"
            " nothing changed",
        )
    data_dir = ensure_data(settings.eval.data_dir)
    print(
        f"round {version}: {new} new signals; training on {len(train_rows)} {settings.train.method} examples "
        f"from {parent}"
    )
    out_dir = models_dir / version
    training = await asyncio.to_thread(
        retrain,
        parent_dir,
        round_dir / "export",
        out_dir,
        version,
        replay_texts(data_dir, settings.replay_poems, settings.train.seed + len(versions)),
        settings.train,
        summary,
    )
    serving_figures = _known_figures(versions, parent, settings.eval)
    gate = await asyncio.to_thread(
        evaluate_pair, parent_dir, out_dir, export.dpo_heldout, settings.eval, serving_figures
    )
    print(gate.table())
    metrics = {
        "parent": parent,
        "feedback": summary,
        "training": training,
        "gate": gate.as_dict(),
        "figures": _figures(gate.candidate),
        "eval": _eval_key(settings.eval),
    }
    status = await _record(settings, parent, version, str(out_dir.resolve()), metrics, gate, serving_figures is None)
    return RoundResult(status, OUTCOMES[status].format(version=version, parent=parent), version, out_dir, metrics)


def _known_figures(versions, parent: str, evaluation: EvalSettings) -> dict | None:
    """The serving model's figures from an earlier round, if they were measured the way this round measures."""
    return next(
        (
            v.metrics.get("figures")
            for v in versions
            if v.version == parent and v.metrics.get("eval") == _eval_key(evaluation)
        ),
        None,
    )


async def _record(
    settings: RoundSettings,
    parent: str,
    version: str,
    path: str,
    metrics: dict,
    gate: GateResult,
    keep_serving_figures: bool,
) -> str:
    """Steps 5 and 6: the candidate in model_versions with every figure, promoted if it passed; the round's status.

    With `keep_serving_figures` the serving model's figures, just measured, are kept too: the next round need not
    measure it again."""
    from bot.store import Store

    async with Store(settings.db) as store:
        if keep_serving_figures and (pv := await store.get_model_version(parent)) is not None:
            await store.record_model_version(
                parent,
                pv.path,
                {**pv.metrics, "figures": _figures(gate.serving), "eval": _eval_key(settings.eval)},
                pv.status,
            )
        status = "candidate" if gate.passed else "rejected"
        await store.record_model_version(version, path, metrics, status=status)
        if gate.passed and settings.promote:
            # What `python -m bot swap` does: the running bots' watchers swap to it live.
            await store.record_model_version(version, path, metrics, status="serving")
            status = "promoted"
    return status


def _figures(measured: dict) -> dict:
    return {k: v for k, v in measured.items() if k != "detail"}


def _eval_key(settings: EvalSettings) -> dict:
    """What the figures were measured on: figures are reused only for the same data and sizes."""
    return {
        "data": str(Path(settings.data_dir).resolve()),
        "ce_poems": settings.ce_poems,
        "n_openings": settings.n_openings,
        "forms": list(settings.forms),
    }


def settings_from_args(args) -> RoundSettings:
    train = TrainSettings(
        method=args.method,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        beta=args.beta,
        replay_weight=args.replay_weight,
        seed=args.seed,
        threads=args.threads,
    )
    evaluation = EvalSettings(
        data_dir=args.data or Path(args.work) / "data",
        ce_poems=args.ce_poems,
        n_openings=args.n_openings,
        threads=args.threads or None,
    )
    return RoundSettings(
        db=args.db,
        work=Path(args.work),
        models_dir=args.models_dir,
        model=args.model,
        min_new=args.min_new,
        min_examples=args.min_examples,
        min_heldout_pairs=args.min_heldout_pairs,
        replay_poems=args.replay_poems,
        promote=not args.no_promote,
        train=train,
        eval=evaluation,
    )


def add_train_arguments(p) -> None:
    d, e = TrainSettings(), EvalSettings()
    p.add_argument("--min-new", type=int, default=MIN_NEW_SIGNALS, help="new signals a round needs")
    p.add_argument("--no-promote", action="store_true", help="record a passing candidate, do not serve it")
    p.add_argument("--min-examples", type=int, default=MIN_TRAIN_EXAMPLES, help="training examples a round needs")
    p.add_argument("--min-heldout-pairs", type=int, default=MIN_HELDOUT_PAIRS, help="held-out pairs the gate needs")
    p.add_argument("--method", choices=("kto", "dpo"), default=d.method)
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--beta", type=float, default=d.beta)
    p.add_argument("--replay-weight", type=float, default=d.replay_weight)
    p.add_argument("--replay-poems", type=int, default=REPLAY_POEMS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--data", type=Path, help="cleaned splits (default <work>/data; made from the corpus if missing)")
    p.add_argument("--ce-poems", type=int, default=e.ce_poems)
    p.add_argument("--n-openings", type=int, default=e.n_openings)
    p.add_argument("--models-dir", type=Path, help="where candidates go (default <work>/feedback/models)")
    p.add_argument("--model", type=Path, help="serving model when the database names none (default: THO_MODEL)")


def run(args) -> int:
    result = asyncio.run(run_round(settings_from_args(args)))
    print(result.message)
    return 0
