"""Training throughput on this machine: tokens/s for threads x batch x block (x torch.compile).

    python -m training bench [--config cpu] [--threads 1 2] [--shapes 16x256 32x128 8x256] [--compile]

Each case builds a fresh GPT-2 of `--config` over the syllable tokenizer and
times `--steps` optimizer steps (forward, backward, AdamW, as `training.train`
runs them) after `--warmup` untimed ones (a compiled forward pays its
compilation there). Batches are random token ids: the cost of a step does not
depend on which tokens they are, and packed poems fill every position anyway; their positions restart
every TYPICAL_EXAMPLE tokens, as packed poems' do (training.dataset.pack).
Prints one line per case; nothing is written.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from training.dataset import Rows

TYPICAL_EXAMPLE = 64  # tokens of a typical training example (a 5 chữ chunk of ten lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="cpu")
    p.add_argument("--tokenizer", type=Path, help="default: <work>/tokenizer")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--shapes", nargs="+", default=["16x256"], help="BATCHxBLOCK")
    p.add_argument("--compile", action="store_true", help="also each case with torch.compile")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)


def step_time(model, optimizer, batch: Rows) -> float:
    from training.train import _loss  # the training loop's own loss: the same work per step

    t = time.perf_counter()
    _loss(model, batch).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - t


def run(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from training.model import CONFIGS, build_model
    from training.train import _optimizer

    tokenizer = AutoTokenizer.from_pretrained(
        str(args.tokenizer or Path(args.work) / "tokenizer"), local_files_only=True
    )
    print(f"config {args.config}, torch {torch.__version__}, {args.steps} timed steps after {args.warmup}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for shape in args.shapes:
            batch_size, block = (int(x) for x in shape.split("x"))
            if block + 1 > CONFIGS[args.config][3]:
                raise SystemExit(
                    f"block {block}: the {args.config} configuration reads at most {CONFIGS[args.config][3] - 1}"
                )
            for compiled in (False, True) if args.compile else (False,):
                torch.manual_seed(0)
                model = build_model(args.config, tokenizer).train()
                if compiled:
                    torch._dynamo.reset()  # each case compiles afresh, never against another's cache limit
                    model.forward = torch.compile(model.forward)
                optimizer = _optimizer(model, argparse.Namespace(lr=1e-4, weight_decay=0.1))  # training's AdamW
                ids = torch.randint(0, len(tokenizer), (batch_size, block + 1))
                # positions restart every TYPICAL_EXAMPLE tokens, so the step builds the packed-sequence mask
                batch = Rows(ids, torch.arange(block + 1).remainder(TYPICAL_EXAMPLE).expand(batch_size, -1))
                t0 = time.perf_counter()
                for _ in range(args.warmup):
                    step_time(model, optimizer, batch)
                warm = time.perf_counter() - t0
                seconds = sum(step_time(model, optimizer, batch) for _ in range(args.steps))
                mode = "compiled" if compiled else "eager   "
                print(
                    f"threads {threads}  batch {batch_size:>3} x block {block:>3}  {mode}  "
                    f"{args.steps * batch_size * block / seconds:7.0f} tok/s  "
                    f"({seconds / args.steps * 1000:.0f} ms/step; warm-up {warm:.1f} s)",
                    flush=True,
                )
    return 0
