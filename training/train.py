"""Train a GPT-2 on the poems (from scratch, or fine-tuning a local checkpoint) and write a model directory.

    python -m training train --config cpu --out models/tho-gpt2-cpu --max-minutes 70
    python -m training train --out models/tho-gpt2-syl-r13 --init-from models/tho-gpt2-syl-r12a --dropout 0
    python -m training train ... --resume        # go on from build/runs/<out name>/ckpt.pt
    python -m training train ... --sound-embeddings   # shared rhyme and tone vectors (sound_embeddings.py)

A plain PyTorch loop, nanoGPT style: packed blocks of tokens, AdamW, linear
warm-up then cosine decay, gradient accumulation, bf16 autocast on a GPU.
The schedule's progress is the larger of steps done / --max-steps and minutes
spent / --max-minutes, so a run cut by its time budget still ends on a low
learning rate. Every --save-every steps (and at the end) it saves a checkpoint
to resume from and exports the model directory, so a run killed half-way still
leaves a usable model.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.nn.utils import parametrize
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from engine.forms import FORM_IDS, get_form
from engine.model_dir import ModelDirError, write_metadata
from training.corpus import CleanPoem, data_hash, read_split
from training.dataset import PACKING, Rows, encode, example_texts, loss, pack, rhyming_chunks, rhyming_stanzas
from training.model import CONFIGS, build_model, load_for_finetuning
from training.sound_embeddings import add_sound_embeddings, plain_state_dict


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    p.add_argument("--out", type=Path, required=True, help="the model directory to write")
    p.add_argument("--version", help="model version (default: the directory name)")
    p.add_argument("--init-from", type=Path, help="go on from this syllable-level model directory (weights only)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    p.add_argument("--tokenizer", type=Path, help="tokenizer directory (default: <work>/tokenizer)")
    p.add_argument("--data", type=Path, help="data directory with train/validation.jsonl (default: <work>/data)")
    p.add_argument("--limit-poems", type=int, help="use only the first N training poems (smoke runs)")
    p.add_argument("--block", type=int, default=256, help="tokens per training row")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--max-minutes", type=float, default=0, help="wall-clock budget (0: none)")
    p.add_argument("--eval-every", type=int, default=200)
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass (README: when it pays)")
    p.add_argument(
        "--dropout",
        type=float,
        help="dropout of embeddings, attention and residuals for this run (default: the model's own, 0.1)",
    )
    p.add_argument(
        "--rhyming-stanzas",
        type=int,
        default=0,
        metavar="K",
        help="add K copies of every training stanza that keeps its form's lengths and rhymes (one-stanza examples)",
    )
    p.add_argument(
        "--rhyming-chunks",
        action=FormCopies,
        default={},
        metavar="FORM=K",
        help="add K copies of every training chunk of FORM in which at least half the rhyme pairs the checker"
        " scores rhyme (repeatable, one per form)",
    )
    p.add_argument(
        "--sound-embeddings",
        action="store_true",
        help="train shared rhyme-key and tone vectors into the syllable embeddings (training/sound_embeddings.py)",
    )


class FormCopies(argparse.Action):
    """`--rhyming-chunks 5chu=4 [--rhyming-chunks lucbat=1 ...]` -> {"5chu": 4, "lucbat": 1}: sorted by form
    and without zero counts, so the same data always gives the same value (tho_model.json, and the
    comparison `--resume` makes: the extra chunks are added in this order, and rows are packed from them)."""

    def __call__(self, parser, namespace, value, option_string=None):
        form, _, k = value.partition("=")
        if form not in FORM_IDS or get_form(form).weights["rhyme"] == 0 or not (k.isascii() and k.isdigit()):
            rhyming = ", ".join(f for f in FORM_IDS if get_form(f).weights["rhyme"])
            parser.error(f"{option_string}: expected FORM=K with FORM one of {rhyming} and K >= 0, not {value!r}")
        copies = {**(getattr(namespace, self.dest) or {}), form: int(k)}
        setattr(namespace, self.dest, {f: n for f, n in sorted(copies.items()) if n})


def form_copies_flag(copies: dict[str, int]) -> str:
    """{"5chu": 4} -> "5chu=4", as the flag is written ("none" for no copies)."""
    return " ".join(f"{form}={k}" for form, k in copies.items()) or "none"


def lr_at(progress: float, step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, progress)
    return args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def validation_loss(model, blocks: Rows, batch_size: int, max_batches: int, device, amp) -> float:
    model.eval()
    losses = []
    for i in range(0, min(len(blocks), batch_size * max_batches), batch_size):
        b = blocks[i : i + batch_size].to(device)
        with amp():
            losses.append(float(_loss(model, b)))
    model.train()
    return sum(losses) / max(1, len(losses))


def _loss(model, b: Rows) -> torch.Tensor:
    # cached(): with --sound-embeddings the embedding and the tied output layer share one parametrized
    # matrix; compute it once per forward, not twice (a no-op for a plain model).
    with parametrize.cached():
        return loss(model, b)


def export(model, tokenizer, out: Path, version: str, metadata: dict) -> None:
    """The model directory: fp16 safetensors in shards of at most 15 MB, tokenizer, metadata."""
    out.mkdir(parents=True, exist_ok=True)
    gen_path = out / "generation_config.json"
    kept = gen_path.read_text(encoding="utf-8") if gen_path.is_file() else None  # the sweep's choice survives
    half = type(model)(model.config)
    half.load_state_dict(plain_state_dict(model))
    half = half.half()
    half.save_pretrained(out, max_shard_size="15MB", safe_serialization=True)
    tokenizer.save_pretrained(out)
    if kept is not None:
        gen_path.write_text(kept, encoding="utf-8")
    write_metadata(out, version, **metadata)
    for f in out.iterdir():  # safetensors files come out owner-only; the model directory is shared
        if f.is_file():
            f.chmod(0o644)


TRAINING_LOG = "training_log.jsonl"  # one line per training run of these weights, oldest first


def record_run(out: Path, init_from: Path | None, entry: dict) -> None:
    """Append a run to the model directory's training log; a run that starts from another model
    directory's weights first takes over that directory's log, so the log covers every run."""
    log_path = out / TRAINING_LOG
    if (
        init_from
        and not log_path.is_file()
        and (Path(init_from) / TRAINING_LOG).is_file()
        and Path(init_from).resolve() != out.resolve()
    ):
        shutil.copyfile(Path(init_from) / TRAINING_LOG, log_path)
    entry = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_runs(model_dir: Path) -> list[dict]:
    path = Path(model_dir) / TRAINING_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_runs(model_dir: Path, current: dict | None = None) -> None:
    """loss.png: validation loss of every run in the training log (and of the run still going),
    steps counted across runs."""
    runs = read_runs(model_dir) + ([current] if current else [])
    if not runs:
        return
    try:
        import matplotlib
    except ImportError:  # a bare GPU box (torch + transformers only): the plot is made back home
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for i, run in enumerate(runs, 1):
        if run.get("validation"):
            steps, losses = zip(*run["validation"], strict=False)
            ax.plot(
                [offset + s for s in steps],
                losses,
                "o-",
                ms=3,
                label=f"run {i}: {run.get('minutes', '?')} min, {run.get('steps', '?')} steps",
            )
        offset += int(run.get("steps") or 0) if not run.get("resumed") else 0
    ax.set_xlabel("optimizer step (all runs)")
    ax.set_ylabel("validation cross-entropy (nats/token)")
    ax.set_title("Training runs of these weights")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(Path(model_dir) / "loss.png", dpi=100)
    plt.close(fig)


CHECKPOINT = "ckpt.pt"  # in build/runs/<out name>/, what --resume reads
# the flags tho_model.json records under "hyperparameters" (the model card reads them)
HYPERPARAMETERS = (
    "block batch_size grad_accum lr min_lr weight_decay warmup max_steps max_minutes seed dropout sound_embeddings "
    "rhyming_stanzas rhyming_chunks"
).split()


@dataclass
class Run:
    """What the loop and the saves share; `setup` makes it, nothing is trained yet."""

    args: argparse.Namespace
    version: str
    run_dir: Path  # build/runs/<out name>: the checkpoint and the loss history
    tokenizer_dir: Path
    device: torch.device
    amp: Callable[[], AbstractContextManager]  # bf16 autocast on a GPU, nothing on a CPU
    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    optimizer: torch.optim.Optimizer
    block: int
    train_poems: list[CleanPoem]
    train_examples: list[list[int]]
    val_blocks: Rows
    state: dict  # step, epoch, row, elapsed, history: everything --resume needs besides the weights
    metadata: dict = field(default_factory=dict)  # tho_model.json, less the figures of the moment
    rows: Rows | None = None  # this epoch's packed training rows
    rows_per_epoch: int = 0


def run(args) -> Path:
    """`python -m training train`: set up, train, evaluate once more, save the finished model."""
    r = setup(args)
    train_loop(r)
    v = evaluate(r)
    print(
        f"done: {r.state['step']} steps, {r.state['elapsed'] / 60:.1f} min, "
        f"validation loss {v:.3f} (ppl {math.exp(v):.1f})"
    )
    save(r, final=True)
    return args.out


# -- setup ---------------------------------------------------------------------------------------------------


def setup(args) -> Run:
    """Model and tokenizer, the encoded data, the optimizer, and the checkpoint's state with --resume."""
    if args.dropout is not None and not 0.0 <= args.dropout < 1.0:
        raise SystemExit(f"--dropout must be in [0, 1), not {args.dropout}")
    if args.rhyming_stanzas < 0:
        raise SystemExit(f"--rhyming-stanzas must be 0 or more, not {args.rhyming_stanzas}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work = Path(args.work)
    data_dir = args.data or work / "data"
    tokenizer_dir = Path(args.tokenizer or work / "tokenizer")
    run_dir = work / "runs" / args.out.name
    run_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else nullcontext

    model, tokenizer = _model_and_tokenizer(args, tokenizer_dir)
    _keep_sampling_defaults(args)
    if args.dropout is not None:
        set_dropout(model, args.dropout)
    block = min(args.block, model.config.n_positions - 1)
    train_poems, train_examples, val_blocks = _data(
        data_dir,
        tokenizer,
        block,
        model.config.n_positions - 1,
        args.limit_poems,
        args.rhyming_stanzas,
        args.rhyming_chunks,
    )
    n_params = sum(p.numel() for p in model.parameters())  # as saved: the sound vectors fold into the embedding
    if args.sound_embeddings:
        add_sound_embeddings(model, tokenizer)
    print(
        f"model: {args.config if not args.init_from else args.init_from}, {n_params / 1e6:.1f}M parameters, "
        f"device {device}"
    )
    model.to(device).train()
    if args.compile:  # the module keeps its parameters and state dict: saving is unchanged
        model.forward = torch.compile(model.forward)
    optimizer = _optimizer(model, args)
    r = Run(
        args=args,
        version=args.version or args.out.name,
        run_dir=run_dir,
        tokenizer_dir=tokenizer_dir,
        device=device,
        amp=amp,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        block=block,
        train_poems=train_poems,
        train_examples=train_examples,
        val_blocks=val_blocks,
        state=_state(args, run_dir, model, optimizer, device),
    )
    r.metadata = _metadata(r, data_dir, n_params, sum(map(len, train_examples)))
    r.rows = pack(train_examples, block, args.seed + r.state["epoch"], model.config.n_positions - 1)
    r.rows_per_epoch = len(r.rows)
    return r


def _model_and_tokenizer(args, tokenizer_dir: Path):
    """A new GPT-2 of --config over our tokenizer, or the --init-from model with its own tokenizer."""
    if args.init_from:
        try:
            return load_for_finetuning(args.init_from)
        except ModelDirError as exc:
            raise SystemExit(f"--init-from: {exc}") from None
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    return build_model(args.config, tokenizer), tokenizer


def _keep_sampling_defaults(args) -> None:
    """A run that goes on from a model keeps that model's sweep-chosen sampling defaults
    (generation_config.json; `export` keeps what the output directory already has)."""
    source = Path(args.init_from) / "generation_config.json" if args.init_from else None
    if source and source.is_file() and not (args.out / "generation_config.json").is_file():
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, args.out / "generation_config.json")


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Every dropout of the model, and its config (so the saved model says so). A small model that
    has seen its data several times may learn faster with less of it (README, "The model and training")."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    for key in ("embd_pdrop", "attn_pdrop", "resid_pdrop"):
        setattr(model.config, key, p)


def _data(
    data_dir: Path,
    tokenizer,
    block: int,
    max_position: int,
    limit_poems: int | None,
    rhyming_copies: int = 0,
    chunk_copies: dict[str, int] | None = None,
):
    """Training poems, their encoded examples (packed anew each epoch), and the validation blocks."""
    train_poems = read_split(data_dir / "train.jsonl")[:limit_poems]
    val_poems = read_split(data_dir / "validation.jsonl")
    t0 = time.time()
    train_examples = encode(list(example_texts(train_poems)), tokenizer)
    if rhyming_copies:
        extra = encode(list(rhyming_stanzas(train_poems)), tokenizer)
        print(f"--rhyming-stanzas {rhyming_copies}: {len(extra)} stanzas keep their form's rhymes")
        train_examples += extra * rhyming_copies
    for form, copies in (chunk_copies or {}).items():
        extra = encode(list(rhyming_chunks(train_poems, form)), tokenizer)
        print(f"--rhyming-chunks {form}={copies}: {len(extra)} chunks rhyme in half their pairs or more")
        train_examples += extra * copies
    val_blocks = pack(encode(list(example_texts(val_poems)), tokenizer), block, 0, max_position)
    print(
        f"{len(train_poems)} poems, {len(train_examples)} examples, {sum(map(len, train_examples))} tokens "
        f"(encoded in {time.time() - t0:.0f}s); {len(val_blocks)} validation blocks of {block}"
    )
    return train_poems, train_examples, val_blocks


def _optimizer(model: torch.nn.Module, args) -> torch.optim.AdamW:
    """AdamW with weight decay on the matrices only (not on biases and layer norms), as in nanoGPT."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.95),
    )


def _state(args, run_dir: Path, model, optimizer, device) -> dict:
    """A fresh run's state, or with --resume the checkpoint's, its weights and optimizer loaded."""
    state = {"step": 0, "epoch": 0, "row": 0, "elapsed": 0.0, "history": {"train": [], "validation": []}}
    ckpt_path = run_dir / CHECKPOINT
    if args.resume and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        trained_with = bool(ckpt["args"].get("sound_embeddings"))
        if trained_with != bool(args.sound_embeddings):
            raise SystemExit(
                f"--resume: the checkpoint was trained {'with' if trained_with else 'without'} --sound-embeddings;"
                " resume it the same way"
            )
        # The checkpoint's epoch and row point into rows packed from these examples: other examples, other rows.
        for name, before in (
            ("rhyming_stanzas", 0),
            ("rhyming_chunks", {}),
            ("limit_poems", None),
            ("block", args.block),
        ):
            was, now = ckpt["args"].get(name, before), getattr(args, name)
            if was != now:
                flag = "--" + name.replace("_", "-")
                if name == "rhyming_chunks":
                    was, now = form_copies_flag(was), form_copies_flag(now)
                raise SystemExit(f"--resume: the checkpoint was trained with {flag} {was}, not {now}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        print(f"resumed at step {state['step']} ({state['elapsed'] / 60:.1f} min done)")
    return state


def _metadata(r: Run, data_dir: Path, n_params: int, n_tokens: int) -> dict:
    """What the model directory says about its making (tho_model.json; the model card reads it)."""
    args, config = r.args, r.model.config
    summary = data_dir / "summary.json"
    return {
        "config": args.config if not args.init_from else f"init-from:{args.init_from}",
        "architecture": {
            "layers": config.n_layer,
            "heads": config.n_head,
            "width": config.n_embd,
            "context": config.n_positions,
        },
        "parameters": n_params,
        "packing": PACKING,
        "device": torch.cuda.get_device_name()
        if r.device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} torch threads)",
        "data_hash": data_hash([data_dir / "train.jsonl"]),
        "train_poems": len(r.train_poems),
        "data_summary": json.loads(summary.read_text(encoding="utf-8")) if summary.is_file() else {},
        "train_tokens": n_tokens,
        "command": "python -m training " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "hyperparameters": {k: getattr(args, k) for k in HYPERPARAMETERS},
    }


# -- the loop ------------------------------------------------------------------------------------------------


def train_loop(r: Run) -> None:
    """Optimizer steps until --max-steps or --max-minutes; evaluate and save on their schedules."""
    args, state = r.args, r.state
    tokens_per_step = args.batch_size * args.grad_accum * r.block
    budget = args.max_minutes * 60
    started = time.time() - state["elapsed"]
    bar = tqdm(total=args.max_steps, initial=state["step"], desc="train", unit="step", mininterval=5)
    while state["step"] < args.max_steps:
        # termination conditions: the step limit above, the time budget here
        elapsed = time.time() - started
        if budget and elapsed >= budget:
            break

        # learning rate: warm-up, then cosine decay over the larger of step and time progress
        progress = max(state["step"] / args.max_steps, elapsed / budget if budget else 0.0)
        lr = lr_at(progress, state["step"], args)
        for group in r.optimizer.param_groups:
            group["lr"] = lr

        # forward backward, accumulating the gradient over --grad-accum batches
        total = 0.0
        for _ in range(args.grad_accum):
            batch = _next_batch(r)
            with r.amp():
                loss = _loss(r.model, batch) / args.grad_accum
            loss.backward()
            total += float(loss.detach())

        # clip the gradient
        torch.nn.utils.clip_grad_norm_(r.model.parameters(), 1.0)

        # step the optimizer, then flush the gradients as soon as we can, no need for this memory anymore
        r.optimizer.step()
        r.optimizer.zero_grad(set_to_none=True)

        # log
        state["step"] += 1
        state["elapsed"] = time.time() - started
        state["history"]["train"].append((state["step"], total))
        bar.update(1)
        bar.set_postfix(loss=f"{total:.3f}", lr=f"{lr:.1e}", epoch=state["epoch"], refresh=False)

        # evaluate on the validation blocks
        if state["step"] % args.eval_every == 0:
            v = evaluate(r)
            tqdm.write(
                f"step {state['step']}: train {total:.3f} validation {v:.3f} (ppl {math.exp(v):.1f}) "
                f"lr {lr:.1e} {state['elapsed'] / 60:.1f} min, "
                f"{state['step'] * tokens_per_step / max(1, state['elapsed']):.0f} tok/s"
            )

        # save: the checkpoint and the model directory
        if state["step"] % args.save_every == 0:
            save(r)
    bar.close()


def _next_batch(r: Run) -> Rows:
    """The next --batch-size rows, on the device; past the end of an epoch the examples are packed anew."""
    state, n = r.state, r.args.batch_size
    if state["row"] + n > r.rows_per_epoch:
        state["epoch"] += 1
        state["row"] = 0
        r.rows = pack(r.train_examples, r.block, r.args.seed + state["epoch"], r.model.config.n_positions - 1)
    batch = r.rows[state["row"] : state["row"] + n].to(r.device)
    state["row"] += n
    return batch


def evaluate(r: Run) -> float:
    """The validation loss now, kept in the history (loss.png and the training log read it)."""
    v = validation_loss(r.model, r.val_blocks, r.args.batch_size, r.args.eval_batches, r.device, r.amp)
    r.state["history"]["validation"].append((r.state["step"], v))
    return v


# -- saving --------------------------------------------------------------------------------------------------


def save(r: Run, final: bool = False) -> None:
    """The checkpoint to resume from and the model directory as it stands, so a killed run leaves a model;
    the finished run also goes into the training log."""
    args, state = r.args, r.state
    out = args.out
    torch.save(
        {"model": r.model.state_dict(), "optimizer": r.optimizer.state_dict(), "state": state, "args": vars(args)},
        r.run_dir / CHECKPOINT,
    )
    val = state["history"]["validation"][-1][1] if state["history"]["validation"] else None
    minutes = round(state["elapsed"] / 60, 1)
    export(
        r.model,
        r.tokenizer,
        out,
        r.version,
        {
            **r.metadata,
            "steps": state["step"],
            "epochs": round(state["epoch"] + state["row"] / max(1, r.rows_per_epoch), 3),
            "minutes": minutes,
            "validation_loss": val,
            "finished": final,
        },
    )
    # The tokenizer's figures travel with it: from the tokenizer step, or from the model fine-tuned (same tokenizer).
    stats = (Path(args.init_from) if args.init_from else r.tokenizer_dir) / "tokenizer_stats.json"
    if stats.is_file() and stats.resolve() != (out / "tokenizer_stats.json").resolve():
        shutil.copyfile(stats, out / "tokenizer_stats.json")
    history = state["history"]["validation"]
    if final:
        record_run(
            out,
            args.init_from,
            {
                "command": r.metadata["command"],
                "init_from": str(args.init_from or ""),
                "resumed": bool(args.resume),
                "steps": state["step"],
                "minutes": minutes,
                "validation_loss": val,
                "validation": history,
                "device": r.metadata["device"],
                "config": r.metadata["config"],
            },
        )
    current = {"validation": history, "steps": state["step"], "minutes": minutes, "resumed": bool(args.resume)}
    plot_runs(out, None if final else current)
    (r.run_dir / "history.json").write_text(json.dumps(state["history"]), encoding="utf-8")
