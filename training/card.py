"""The model card: README.md in a model directory, from tho_model.json, eval.json, sweep.json and the data summary.

python -m training card --model models/tho-gpt2-cpu
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.forms import FORMS

TARGETS = "checker total ≥ 0.9 with constraints for 5 chữ and lục bát; copy rate ≤ 5%; p50 ≤ 1.5 s for one 4-line poem"


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _poem_block(lines: list[str]) -> str:
    return "\n".join(f"> {ln}  " for ln in lines)


def samples_markdown(evaluation: dict, per_form: int = 5, forms=("5chu", "lucbat")) -> str:
    """Sample poems (constrained, default settings) from test-split openings, as Markdown."""
    out = []
    for form in forms:
        for lines in evaluation.get("samples", {}).get("constrained", {}).get(form, [])[:per_form]:
            out.append(f"**{FORMS[form].title}** — opening: *{lines[0]}*\n\n{_poem_block(lines)}\n")
    return "\n".join(out)


def _fmt(x) -> str:
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _hardware_note(meta: dict) -> str:
    run = (
        f"{meta.get('minutes', '?')} minutes ({meta.get('steps', '?')} optimizer steps, "
        f"{meta.get('epochs', '?')} epochs over the training split)"
    )
    if str(meta.get("device", "cpu")).startswith("cpu"):
        return (
            "**Hardware note.** No GPU was available: this is the best model a 2-core CPU, shared with other "
            f"jobs, trained in {run}; far from converged. `make model-gpu` (the `gpu` configuration, 8 layers, "
            "width 512) is the recipe for a CUDA GPU; its result is evaluated here and shipped if it is better."
        )
    return f"Trained on {meta['device']} in {run}."


def _tokenizer_note(model_dir: Path) -> str:
    from engine.model_dir import read_model_info

    if not read_model_info(model_dir).syllable_level:
        return (
            "- Tokenizer: byte-level BPE trained on the training split, with the prompt format's special tokens "
            "(`<|endoftext|>` and one tag per form)."
        )
    stats = _load(model_dir / "tokenizer_stats.json")
    return (
        "- Tokenizer: one token per syllable (`engine/syllable_text.py`): "
        f"{stats.get('syllables', '?')} lower-case syllables seen at least {stats.get('min_count', '?')} times in "
        f"the training split ({100 * stats.get('coverage', 0):.2f}% of its syllables), "
        f"{stats.get('names', '?')} capitalised forms the corpus writes mid-line (names, capitalised pronouns), "
        "punctuation, the line break, the form tags, the end token and an unknown token: "
        f"{stats.get('vocab_size', '?')} tokens. The first letter of a line is capitalised by rule."
    )


def write_card(model_dir: Path, data_summary: Path | None = None) -> Path:
    model_dir = Path(model_dir)
    meta = _load(model_dir / "tho_model.json")
    evaluation = _load(model_dir / "eval.json")
    sweep = _load(model_dir / "sweep.json")
    summary = _load(data_summary) if data_summary else meta.get("data_summary", {})
    arch = meta.get("architecture", {})
    size_mb = sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) / 1e6
    hp = meta.get("hyperparameters", {})

    parts = [
        f"# {meta.get('version', model_dir.name)} — Thơ bot default model",
        "",
        "A GPT-2 trained from scratch on Vietnamese poems to write 5 chữ, 7 chữ, 8 chữ, lục bát and free verse "
        "in the Thơ bot prompt format (`engine/prompt.py`, prompt format "
        f"{meta.get('prompt_format', 1)}).",
        "",
        _hardware_note(meta),
        "",
        "## Model",
        "",
        f"- GPT-2, {arch.get('layers')} layers, {arch.get('heads')} heads, width {arch.get('width')}, context "
        f"{arch.get('context')} tokens, {meta.get('parameters', 0) / 1e6:.1f}M parameters "
        f"(configuration `{meta.get('config')}` in `training/model.py`).",
        _tokenizer_note(model_dir),
        f"- Weights: fp16 safetensors in shards of at most 15 MB, {size_mb:.1f} MB in all; the CPU backend loads "
        "them as float32.",
        "",
        "## Data",
        "",
        "`../shared/data/poems.jsonl.gz` (106,008 rows from public poem collections; see its README), cleaned by "
        "`training/corpus.py`: NFC, markup and numbering removed, title and signature lines dropped, the first "
        "letter of every line upper case (one rule for every source), junk dropped (fewer than 4 lines, lines of "
        "more than 12 syllables, non-Vietnamese text, no recognisable form), form labelled by "
        "`engine.forms.label_form`, exact duplicates removed, at most 300 poems per author, split 96/2/2 by a "
        "hash of the poem's text. Training examples are stanza-aligned chunks of 1-4 stanzas.",
        "",
    ]
    if summary.get("splits"):
        forms = sorted({f for s in summary["splits"].values() for f in s if f != "all"})
        parts += [
            "| split | poems | " + " | ".join(forms) + " |",
            "| --- | --: | " + " | ".join("--:" for _ in forms) + " |",
        ]
        for name, counts in summary["splits"].items():
            parts.append(
                f"| {name} | {counts.get('all', 0)} | " + " | ".join(str(counts.get(f, 0)) for f in forms) + " |"
            )
        if summary.get("dropped"):
            parts += ["", "Dropped: " + ", ".join(f"{k} {v}" for k, v in summary["dropped"].items()) + "."]
        parts.append("")
    parts += [
        f"Training split: {meta.get('train_poems', '?')} poems, {meta.get('train_tokens', '?')} tokens; data hash "
        f"`{meta.get('data_hash', '?')}`.",
        "",
        "## Training",
        "",
        "```",
        "make model   # or, step by step:",
        "python -m training data",
        "python -m training tokenizer",
        meta.get("command", "python -m training train ..."),
        "python -m training sweep --model " + str(model_dir),
        "python -m training evaluate --model " + str(model_dir),
        "python -m training card --model " + str(model_dir),
        "```",
        "",
        f"AdamW (β = 0.9, 0.95, weight decay {hp.get('weight_decay')}), learning rate {hp.get('lr')} with "
        f"{hp.get('warmup')} warm-up steps and cosine decay to {hp.get('min_lr')} over the time budget, "
        f"{hp.get('batch_size')} × {hp.get('grad_accum')} rows of {hp.get('block')} tokens per step. Final "
        f"validation loss {_fmt(meta.get('validation_loss'))}.",
        "",
        "![loss curve](loss.png)",
        "",
    ]
    if evaluation:
        parts += [
            "## Evaluation",
            "",
            f"Targets: {TARGETS}.",
            "",
            (model_dir / "eval.md").read_text(encoding="utf-8") if (model_dir / "eval.md").is_file() else "",
            "*Constrained*: the engine's decoding constraint (for this syllable-level model the form automaton: "
            "syllable counts, tone classes, every rhyme, in one pass), so form scores are 1.0 by construction "
            "except where a test opening itself breaks a rule. *Unconstrained*: free sampling, the "
            "first four lines scored; this shows what the model itself learned. Openings are first lines of "
            "test-split poems that occur nowhere in the training split; ROUGE-L and BLEU-4 (syllables) compare "
            "lines 2-4 with the real poem's lines 2-4 (low by nature: a poem has many good continuations). "
            "Copy rate: share of generated lines found verbatim in the training split. Known syllables: share of "
            "written syllables that occur at least 3 times in the training split (the constraint can force "
            'non-words such as a glued "mưaội").',
            "",
        ]
    if sweep:
        parts += [
            "## Default sampling settings",
            "",
            f"Chosen by `python -m training sweep` on {sweep.get('openings')} validation-split openings "
            f"(5 chữ and lục bát): `{json.dumps(sweep.get('chosen'))}`. Score = 0.4 × checker total + 0.2 × "
            "distinct-2 + 0.2 × fluency (1 − ln perplexity / ln vocabulary) + 0.2 × known syllables, "
            "candidates (best-of-n) the "
            "smallest within 0.01 of the best total under the latency budget.",
            "",
            "| temperature | top-k | top-p | repetition penalty | no-repeat n-gram | total | distinct-2 | "
            "perplexity | known syllables | score |",
            "| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
        ]
        for r in sweep.get("grid", []):
            s = r["settings"]
            parts.append(
                f"| {s['temperature']} | {s['top_k']} | {s['top_p']} | {s['repetition_penalty']} | "
                f"{s['no_repeat_ngram_size']} | {r['total']:.3f} | {r['distinct_2']:.3f} | {r['perplexity']} | "
                f"{100 * r.get('known_syllables', 0):.1f}% | {r['score']:.3f} |"
            )
        parts += ["", "| candidates | total | p50 latency (s) |", "| --: | --: | --: |"]
        parts += [f"| {r['candidates']} | {r['total']:.3f} | {r['p50_s']} |" for r in sweep.get("candidates", [])]
        parts.append("")
    if evaluation.get("samples"):
        parts += [
            "## Samples",
            "",
            "Written by the engine with the default settings, from opening lines of "
            "test-split poems (not in the training split).",
            "",
            samples_markdown(evaluation),
        ]
    parts += [
        "## Use and limits",
        "",
        "For the Thơ bot only. Trained on poems that keep their authors' rights: the model may echo phrases of "
        "its training poems (see the copy rate). Most training poems are modern amateur verse.",
        "",
    ]
    path = model_dir / "README.md"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
