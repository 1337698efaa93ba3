"""Training entry points: corpus -> tokenizer -> GPT-2 -> evaluation -> sampling sweep -> model card.

Usage (each step reads the previous one's output under --work, default build/):

    python -m training data      [--input FILE ...] [--author-cap 300]
    python -m training tokenizer [--min-count 10]
    python -m training train     --config cpu --out models/tho-gpt2-cpu [--max-minutes 70] [--init-from DIR] [--resume]
    python -m training bench     [--threads 1 2] [--shapes 16x256 32x128] [--compile]   # training tokens/s
    python -m training evaluate  --model models/tho-gpt2-cpu [--n-openings 120]
    python -m training sweep     --model models/tho-gpt2-cpu
    python -m training card      --model models/tho-gpt2-cpu
    python -m training openings  [--per-form 100]          # test-split openings for python -m engine generate
    python -m training nonwords  build/poems.jsonl         # generated syllables outside the vocabulary
    python -m training realism   build/poems.jsonl         # those poems' lines 2-4 against the real ones
    python -m training rhymes    [build/poems.jsonl]       # which line ends rhyme (default: the training split)
    python -m training feedback export|run|simulate ...   (learning from ratings: training/feedback/)

`data` writes build/data/{train,validation,test}.jsonl (cleaned poems; these
stay out of the repository), `tokenizer` build/tokenizer/, `train` a model
directory (fp16 safetensors shards, tokenizer, tho_model.json, loss.png) and
its checkpoints under build/runs/<name>/, `evaluate` eval.json and eval.md in
the model directory, `sweep` generation_config.json (the defaults users get),
`card` README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

WORK = Path("build")


def build_parser() -> argparse.ArgumentParser:
    """One sub-command per step; the heavy modules are imported only for the step that runs."""
    parser = argparse.ArgumentParser(
        prog="python -m training", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=WORK, help="work directory for data, tokenizer, runs")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="clean, label, cap and split the corpus")
    p.add_argument("--input", type=Path, nargs="*", help="corpus or crawler JSONL files (default: the shared corpus)")
    p.add_argument("--author-cap", type=int, default=None)

    p = sub.add_parser("tokenizer", help="build the syllable tokenizer from the training split")
    p.add_argument("--min-count", type=int, default=None, help="keep syllables seen this often")

    p = sub.add_parser("train", help="pretrain or fine-tune a GPT-2 and write a model directory")
    from training.train import add_arguments as add_train_arguments

    add_train_arguments(p)

    p = sub.add_parser("bench", help="training tokens/s for threads x batch x block (x torch.compile)")
    from training.bench import add_arguments as add_bench_arguments

    add_bench_arguments(p)

    p = sub.add_parser("evaluate", help="perplexity and generation metrics into eval.json / eval.md")
    from training.evaluate import add_arguments as add_eval_arguments

    add_eval_arguments(p)

    p = sub.add_parser("sweep", help="choose the model's default sampling settings")
    from training.sweep import add_arguments as add_sweep_arguments

    add_sweep_arguments(p)

    p = sub.add_parser("openings", help="write test-split opening lines, per form, for python -m engine generate")
    p.add_argument("--per-form", type=int, default=100)
    p.add_argument("--out", type=Path, default=None, help="default: <work>/openings.jsonl")

    p = sub.add_parser("nonwords", help="count generated syllables outside the syllable vocabulary")
    p.add_argument("poems", type=Path, help="the output of python -m engine generate")
    p.add_argument("--tokenizer", type=Path, default=None, help="default: <work>/tokenizer")

    p = sub.add_parser("realism", help="written lines 2-4 against the real ones: discriminator, distinct-2, bigrams")
    p.add_argument("poems", type=Path, help="the output of python -m engine generate for `openings`")
    p.add_argument("--data", type=Path, default=None, help="data directory (default: <work>/data)")

    p = sub.add_parser("rhymes", help="share of stanzas whose line ends rhyme, per pair of lines (5/7/8 chữ)")
    p.add_argument("poems", type=Path, nargs="?", help="python -m engine generate output (default: the training split)")
    p.add_argument("--data", type=Path, default=None, help="data directory (default: <work>/data)")

    p = sub.add_parser("card", help="write the model card README.md")
    p.add_argument("--model", type=Path, required=True)

    p = sub.add_parser("feedback", help="learn from the bot's ratings: export, run a round, simulate")
    from training.feedback.cli import add_arguments as add_feedback_arguments

    add_feedback_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "data":
        from training.corpus import AUTHOR_CAP, DEFAULT_CORPUS, prepare_files

        prepare_files(args.input or [DEFAULT_CORPUS], args.work / "data", args.author_cap or AUTHOR_CAP)
    elif args.command == "tokenizer":
        from training.tokenizer import MIN_SYLLABLE_COUNT, train_from_split

        train_from_split(
            args.work / "data" / "train.jsonl",
            args.work / "tokenizer",
            args.min_count or MIN_SYLLABLE_COUNT,
            test_path=args.work / "data" / "test.jsonl",
        )
    elif args.command == "train":
        from training.train import run

        run(args)
    elif args.command == "bench":
        from training.bench import run

        return run(args)
    elif args.command == "evaluate":
        from training.evaluate import run

        run(args)
    elif args.command == "sweep":
        from training.sweep import run

        run(args)
    elif args.command == "openings":
        from training.nonwords import write_openings

        write_openings(args.work / "data", args.out or args.work / "openings.jsonl", args.per_form)
    elif args.command == "nonwords":
        from training.nonwords import count_nonwords

        count_nonwords(args.poems, args.tokenizer or args.work / "tokenizer")
    elif args.command == "realism":
        from training.realism import realism_report

        realism_report(args.poems, args.data or args.work / "data")
    elif args.command == "rhymes":
        from training.rhymes import rhymes_report

        rhymes_report(args.poems, args.data or args.work / "data")
    elif args.command == "card":
        from training.card import write_card

        write_card(args.model)
    elif args.command == "feedback":
        from training.feedback.cli import run as run_feedback

        return run_feedback(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
