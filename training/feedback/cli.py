"""`python -m training feedback ...`: the arguments (cheap to import) and the dispatch."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="feedback_command", required=True)
    e = sub.add_parser("export", help="ratings and /tholai -> KTO and DPO JSONL (no user keys)")
    e.add_argument("--db", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--model", type=Path, help="the model the export is for (its spelling); default: the shipped one")
    r = sub.add_parser("run", help="one round: export, train, gate, record, promote")
    r.add_argument("--db", type=Path, required=True)
    from training.feedback.loop import add_train_arguments

    add_train_arguments(r)
    s = sub.add_parser("simulate", help="simulated raters with a hidden taste, through the real bot core")
    from training.feedback.simulate import add_arguments as add_simulate_arguments

    add_simulate_arguments(s)


def run(args: argparse.Namespace) -> int:
    if args.feedback_command == "export":
        from bot.config import default_model_dir
        from training.feedback.export import export, spelling_of

        summary = export(args.db, args.out, spell=spelling_of(args.model or default_model_dir()))
        print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in summary.items() if k != "weights"))
        return 0
    if args.feedback_command == "run":
        from training.feedback.loop import run as run_round

        return run_round(args)
    from training.feedback.simulate import run as run_simulation

    return run_simulation(args)
