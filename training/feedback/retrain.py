"""Fine-tune the serving model on the export with TRL, plus a replay sample of the corpus.

KTO (`trl.KTOTrainer`) learns from unpaired examples (every rated poem counts);
DPO (`trl.DPOTrainer`) from pairs of a liked and a disliked poem for the same
opening (fewer, but a sharper signal).  Both keep the serving model, frozen, as
the reference: the candidate may move away from it only as far as beta allows.

Weights: TRL's trainers take no per-example weight, so an example of weight w
appears round(w / IMPLICIT_WEIGHT) times in the shuffled training set (a /tholai
once, one rating three times, two agreeing raters six times).

Replay: every step also adds REPLAY_WEIGHT x the plain language-model loss on a
batch of corpus poems (training split, format_poem texts), so that pushing
toward what raters liked does not make the model forget the language.

The candidate directory is a complete model directory (engine.model_dir): the
serving model's tokenizer and generation defaults, new weights, and
tho_model.json naming the parent version and the feedback it learnt from.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.model_dir import METADATA_FILE, read_model_info, write_metadata
from training.dataset import encode
from training.feedback.export import IMPLICIT_WEIGHT, read_jsonl

REPLAY_WEIGHT = 2.0
WEIGHT_FILES = (".safetensors", ".bin")
NOT_COPIED = {"README.md", "eval.json", "eval.md", "loss.png", METADATA_FILE, "config.json"}


@dataclass
class TrainSettings:
    method: str = "kto"  # kto | dpo
    steps: int = 80
    batch_size: int = 8
    learning_rate: float = 3e-5
    beta: float = 0.1
    replay_weight: float = REPLAY_WEIGHT
    replay_batch: int = 8
    max_length: int = 256
    seed: int = 0
    threads: int = 0  # 0: torch's default


def copies(weight: float) -> int:
    return max(1, round(weight / IMPLICIT_WEIGHT))


def weighted(rows: list[dict], columns: tuple[str, ...], seed: int) -> list[dict]:
    """Each row repeated by its weight, keeping only the columns TRL reads, shuffled."""
    out = [{c: r[c] for c in columns} for r in rows for _ in range(copies(float(r.get("weight", 1.0))))]
    random.Random(seed).shuffle(out)
    return out


def kto_class_weights(examples: list[dict]) -> dict[str, float]:
    """TRL's advice: desirable_weight * n_desirable / (undesirable_weight * n_undesirable) in [1, 4/3].

    Raters dislike most poems at first, so the rarer class (usually the liked
    poems) is up-weighted; the other keeps weight 1.
    """
    good = sum(1 for r in examples if r["label"])
    bad = len(examples) - good
    if not good or not bad:
        return {"desirable_weight": 1.0, "undesirable_weight": 1.0}
    if good < bad:
        return {"desirable_weight": round(bad / good, 3), "undesirable_weight": 1.0}
    return {"desirable_weight": 1.0, "undesirable_weight": round(good / bad, 3)}


class ReplayBatches:
    """Endless shuffled batches of tokenised corpus poems, padded on the right."""

    def __init__(self, texts: list[str], tokenizer, batch: int, max_length: int, seed: int):
        # In the model's own spelling, as pretraining read them (training.dataset.encode): read raw,
        # a syllable tokenizer turns every line's last word ("rơi" before "\n", not "rơi ") into
        # the unknown token, and the candidate learnt to write it (free decoding: 316 in 64 poems).
        self.rows = [ids[:max_length] for ids in encode(texts, tokenizer) if len(ids) > 1]
        self.batch, self.pad = batch, tokenizer.pad_token_id or 0
        self.rng = random.Random(seed)

    def next(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.rng.sample(self.rows, min(self.batch, len(self.rows)))
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids.to(device), mask.to(device)


def _with_replay(trainer_class):
    """A TRL trainer whose training loss also holds the replay batch's language-model loss."""

    class WithReplay(trainer_class):
        replay: ReplayBatches | None = None
        replay_weight: float = 0.0

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            if self.replay is None or not self.replay_weight or not model.training:
                return out
            loss, extra = out if return_outputs else (out, None)
            ids, mask = self.replay.next(loss.device)
            lm = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
            loss = loss + self.replay_weight * lm
            return (loss, extra) if return_outputs else loss

    WithReplay.__name__ = f"{trainer_class.__name__}WithReplay"
    return WithReplay


def _load(model_dir: Path):
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = GPT2LMHeadModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32)
    return model, tokenizer


def _trainer(settings: TrainSettings, model, ref, tokenizer, rows: list[dict], out: Path):
    from datasets import Dataset

    common = dict(
        output_dir=str(out),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        beta=settings.beta,
        max_length=settings.max_length,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(10, settings.steps // 10),
        logging_steps=max(1, settings.steps // 10),
        save_strategy="no",
        report_to=[],
        seed=settings.seed,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    if settings.method == "kto":
        from trl import KTOConfig, KTOTrainer

        examples = weighted(rows, ("prompt", "completion", "label"), settings.seed)
        config = KTOConfig(**common, **kto_class_weights(examples))
        dataset = Dataset.from_list(examples)
        cls = _with_replay(KTOTrainer)
    elif settings.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        config = DPOConfig(**common)
        dataset = Dataset.from_list(weighted(rows, ("prompt", "chosen", "rejected"), settings.seed))
        cls = _with_replay(DPOTrainer)
    else:
        raise ValueError(f"unknown method {settings.method!r}: kto or dpo")
    return cls(model=model, ref_model=ref, args=config, train_dataset=dataset, processing_class=tokenizer)


def retrain(
    serving_dir: str | Path,
    export_dir: str | Path,
    out_dir: str | Path,
    version: str,
    replay_texts: list[str],
    settings: TrainSettings | None = None,
    feedback: dict | None = None,
) -> dict:
    """Train a candidate from the serving model; returns what happened (steps, losses, seconds)."""
    settings = settings or TrainSettings()
    serving_dir, export_dir, out_dir = Path(serving_dir), Path(export_dir), Path(out_dir)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    rows = read_jsonl(export_dir / ("kto.jsonl" if settings.method == "kto" else "dpo.jsonl"))
    if not rows:
        raise ValueError(f"{export_dir} has no {settings.method} training examples")
    info = read_model_info(serving_dir)
    model, tokenizer = _load(serving_dir)
    ref, _ = _load(serving_dir)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tho-feedback-") as scratch:
        trainer = _trainer(settings, model, ref, tokenizer, rows, Path(scratch))
        if replay_texts and settings.replay_weight:
            trainer.replay = ReplayBatches(
                replay_texts, tokenizer, settings.replay_batch, settings.max_length, settings.seed
            )
            trainer.replay_weight = settings.replay_weight
        result = trainer.train()
        history = [h for h in trainer.state.log_history if "loss" in h]
    seconds = time.perf_counter() - t0
    _save(trainer.model, serving_dir, out_dir)
    report = {
        "method": settings.method,
        "steps": settings.steps,
        "examples": len(rows),
        "learning_rate": settings.learning_rate,
        "beta": settings.beta,
        "replay_weight": settings.replay_weight,
        "replay_poems": len(replay_texts),
        "train_loss": round(float(result.training_loss), 4),
        "last_logged": {k: round(v, 4) for k, v in (history[-1] if history else {}).items() if isinstance(v, float)},
        "seconds": round(seconds, 1),
    }
    write_metadata(out_dir, version, parent=info.version, feedback=feedback or {}, training=report)
    return report


def _save(model, serving_dir: Path, out_dir: Path) -> None:
    """The serving directory's tokenizer and defaults, with the new weights in the serving dtype."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in serving_dir.iterdir():
        if path.is_file() and path.name not in NOT_COPIED and not path.name.endswith(WEIGHT_FILES):
            shutil.copy2(path, out_dir / path.name)
    generation = (
        (out_dir / "generation_config.json").read_bytes() if (out_dir / "generation_config.json").is_file() else None
    )
    config = json.loads((serving_dir / "config.json").read_text(encoding="utf-8"))
    dtype = config.get("dtype") or config.get("torch_dtype")
    model = model.to(torch.float16) if dtype == "float16" else model
    model.save_pretrained(out_dir)
    if generation is not None:  # the sweep's sampling defaults, as the serving model had them
        (out_dir / "generation_config.json").write_bytes(generation)
