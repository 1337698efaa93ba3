"""The model card: README.md in a model directory, from tho_model.json, eval.json, sweep.json and the data summary.

python -m training card --model models/tho-gpt2-cpu

The card's prose lives in the templates below, one per section, with named fields; the functions only work out
the fields. Paragraphs are wrapped in the source; Markdown joins the lines of a paragraph.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.forms import FORMS
from training.corpus import rows_read
from training.dataset import PACKING

TARGETS = "checker total ≥ 0.9 with constraints for 5 chữ and lục bát; copy rate ≤ 5%; p50 ≤ 1.5 s for one 4-line poem"

MODEL = """\
# {version} — Thơ bot default model

A GPT-2 trained from scratch on Vietnamese poems to write 5 chữ, 7 chữ, 8 chữ, lục bát and free verse in the
Thơ bot prompt format (`engine/prompt.py`, prompt format {prompt_format}).

{hardware}

## Model

- GPT-2, {layers} layers, {heads} heads, width {width}, context {context} tokens, {parameters:.1f}M parameters
  (configuration `{config}` in `training/model.py`).
- Tokenizer: {tokenizer}
- Weights: fp16 safetensors in shards of at most 15 MB, {size_mb:.1f} MB in all; the CPU backend loads them as
  float32.

"""

CPU_RUN = """\
**Hardware note.** No GPU was available: this is the best model a 2-core CPU, shared with other jobs, trained in
{run}; far from converged. `make model-gpu` (the `gpu` configuration, 8 layers, width 512) is the recipe for a CUDA
GPU; its result is evaluated here and shipped if it is better."""

GPU_RUN = "Trained on {device} in {run}."

RUN = "{minutes} minutes ({steps} optimizer steps, {epochs} epochs over the training split)"
RUNS = "{n} runs, {minutes} minutes and {steps} optimizer steps in all (the last: {last})"

SYLLABLE_TOKENIZER = """\
one token per syllable (`engine/syllable_text.py`): {syllables} lower-case syllables seen at least
  {min_count} times in the training split ({coverage:.2f}% of its syllables), {names} capitalised forms the corpus
  writes mid-line (names, capitalised pronouns), punctuation, the line break, the form tags, the end token and an
  unknown token: {vocab_size} tokens. The first letter of a line is capitalised by rule."""

DATA = """\
## Data

`../shared/data/poems.jsonl.gz` ({rows} from public poem collections; see its README), cleaned by
`training/corpus.py`: NFC, markup and numbering removed, title and signature lines dropped, the first letter of
every line upper case (one rule for every source), junk dropped (fewer than 4 lines, lines of more than 12
syllables, non-Vietnamese text, no recognisable form), form labelled by `engine.forms.label_form`, exact duplicates
removed, at most 300 poems per author, split 96/2/2 by a hash of the poem's text. Training examples are
stanza-aligned chunks of 1-4 stanzas.

{splits}Training split: {train_poems} poems, {train_tokens} tokens; data hash `{data_hash}`.

"""

TRAINING = """\
## Training

```
make model   # or, step by step:
python -m training data
python -m training tokenizer
{command}
python -m training sweep --model {model_dir}
python -m training evaluate --model {model_dir}
python -m training card --model {model_dir}
```

AdamW (β = 0.9, 0.95, weight decay {weight_decay}), learning rate {lr} with {warmup} warm-up steps and cosine decay
to {min_lr} over the time budget, {batch_size} × {grad_accum} rows of {block} tokens per step, dropout {dropout}.{flags}
Final validation loss {validation_loss}.

![loss curve](loss.png)

"""

EVALUATION = """\
## Evaluation

Targets: {targets}.

{eval_md}
*Constrained*: the engine's decoding constraint (for this syllable-level model the form automaton: syllable counts,
tone classes, every rhyme, in one pass), so form scores are 1.0 by construction except where a test opening itself
breaks a rule. *Unconstrained*: free sampling, the first four lines scored; this shows what the model itself
learned. Openings are first lines of test-split poems that occur nowhere in the training split; ROUGE-L and BLEU-4
(syllables) compare lines 2-4 with the real poem's lines 2-4 (low by nature: a poem has many good continuations).
Copy rate: share of generated lines found verbatim in the training split. Known syllables / bigrams: share of
written syllables seen at least 3 times / adjacent syllable pairs seen at all in the training split (real lines score
below 100% on bigrams; far above theirs is stock phrases, far below word salad). Discriminator: cross-validated
accuracy of a logistic regression on syllable uni- and bigrams telling written lines 2-4 from the real ones (0.5:
it cannot tell them apart). All of these depend on the sampling settings (the defaults below).

"""

SWEEP = """\
## Default sampling settings

Chosen by `python -m training sweep` on {openings} validation-split openings (5 chữ and lục bát): `{chosen}`.
Score = 0.4 × checker total + 0.2 × min(1, distinct-2 / real) + 0.2 × max(0, 1 − |known bigrams − real| / real) +
0.2 × min(1, 2 × (1 − discriminator)), the last three against the same poems' real lines 2-4 (real distinct-2
{real_d2}, known bigrams {real_kb}); candidates (best-of-n) the smallest within 0.01 of the best total under the
latency budget.

| temperature | top-k | top-p | repetition penalty | no-repeat n-gram | total | distinct-2 | known bigrams | discriminator | score |
| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |
{grid}
| candidates | total | p50 latency (s) |
| --: | --: | --: |
{candidates}
"""  # noqa: E501 (a table row cannot be wrapped)

GRID_ROW = (
    "| {s[temperature]} | {s[top_k]} | {s[top_p]} | {s[repetition_penalty]} | {s[no_repeat_ngram_size]} "
    "| {r[total]:.3f} | {r[distinct_2]:.3f} | {known} | {disc} | {r[score]:.3f} |\n"
)

CANDIDATES_ROW = "| {candidates} | {total:.3f} | {p50_s} |\n"

SAMPLES = """\
## Samples

Written by the engine with the default settings, from opening lines of test-split poems (not in the training split).

{samples}
"""

SAMPLE = "**{title}** — opening: *{opening}*\n\n{poem}\n"

LIMITS = """\
## Use and limits

For the Thơ bot only. Trained on poems that keep their authors' rights: the model may echo phrases of its training
poems (see the copy rate). Most training poems are modern amateur verse.
"""


def write_card(model_dir: Path, data_summary: Path | None = None) -> Path:
    """README.md in `model_dir`; the data summary is the one in tho_model.json unless another is given."""
    model_dir = Path(model_dir)
    meta = _load(model_dir / "tho_model.json")
    evaluation = _load(model_dir / "eval.json")
    sweep = _load(model_dir / "sweep.json")
    summary = _load(data_summary) if data_summary else meta.get("data_summary", {})
    sections = [
        _model_section(meta, model_dir),
        _data_section(meta, summary),
        _training_section(meta, model_dir),
        _evaluation_section(model_dir) if evaluation else "",
        _sweep_section(sweep) if sweep else "",
        SAMPLES.format(samples=samples_markdown(evaluation)) if evaluation.get("samples") else "",
        LIMITS,
    ]
    path = model_dir / "README.md"
    path.write_text("".join(sections), encoding="utf-8")
    return path


def samples_markdown(evaluation: dict, per_form: int = 5, forms=("5chu", "lucbat")) -> str:
    """Sample poems (constrained, default settings) from test-split openings, as Markdown."""
    return "\n".join(
        SAMPLE.format(title=FORMS[form].title, opening=lines[0], poem="\n".join(f"> {ln}  " for ln in lines))
        for form in forms
        for lines in evaluation.get("samples", {}).get("constrained", {}).get(form, [])[:per_form]
    )


def _model_section(meta: dict, model_dir: Path) -> str:
    arch = meta.get("architecture", {})
    return MODEL.format(
        version=meta.get("version", model_dir.name),
        prompt_format=meta.get("prompt_format", 1),
        hardware=_hardware_note(meta, _runs(model_dir)),
        layers=arch.get("layers"),
        heads=arch.get("heads"),
        width=arch.get("width"),
        context=arch.get("context"),
        parameters=meta.get("parameters", 0) / 1e6,
        config=meta.get("config"),
        tokenizer=_tokenizer_note(model_dir),
        size_mb=sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) / 1e6,
    )


def _hardware_note(meta: dict, runs: list[dict]) -> str:
    """Where and how long these weights were trained: every run in their training log."""
    run = RUN.format(**{k: meta.get(k, "?") for k in ("minutes", "steps", "epochs")})
    if len(runs) > 1:  # the weights' whole history, not just the last run
        minutes = sum(float(r.get("minutes") or 0) for r in runs)
        steps = sum(int(r.get("steps") or 0) for r in runs)
        run = RUNS.format(n=len(runs), minutes=f"{minutes:g}", steps=steps, last=run)
    if str(meta.get("device", "cpu")).startswith("cpu"):
        return CPU_RUN.format(run=run)
    return GPU_RUN.format(device=meta["device"], run=run)


def _runs(model_dir: Path) -> list[dict]:
    from training.train import read_runs  # torch is imported by train.py; the card needs it only here

    return read_runs(model_dir)


def _tokenizer_note(model_dir: Path) -> str:
    stats = _load(model_dir / "tokenizer_stats.json")
    fields = {k: stats.get(k, "?") for k in ("syllables", "min_count", "names", "vocab_size")}
    return SYLLABLE_TOKENIZER.format(coverage=100 * stats.get("coverage", 0), **fields)


def _data_section(meta: dict, summary: dict) -> str:
    return DATA.format(
        rows=f"{rows_read(summary):,} rows" if summary.get("splits") else "rows",
        splits=_splits_table(summary),
        **{k: meta.get(k, "?") for k in ("train_poems", "train_tokens", "data_hash")},
    )


def _splits_table(summary: dict) -> str:
    """Poems per split and form, and what the data step dropped, from its summary.json."""
    splits = summary.get("splits")
    if not splits:
        return ""
    forms = sorted({f for counts in splits.values() for f in counts if f != "all"})
    rows = [
        "| split | poems | " + " | ".join(forms) + " |",
        "| --- | --: | " + " | ".join("--:" for _ in forms) + " |",
        *(
            f"| {name} | {counts.get('all', 0)} | " + " | ".join(str(counts.get(f, 0)) for f in forms) + " |"
            for name, counts in splits.items()
        ),
    ]
    if summary.get("dropped"):
        rows += ["", "Dropped: " + ", ".join(f"{k} {v}" for k, v in summary["dropped"].items()) + "."]
    return "\n".join(rows) + "\n\n"


def _training_section(meta: dict, model_dir: Path) -> str:
    hp = meta.get("hyperparameters", {})
    return TRAINING.format(
        command=meta.get("command", "python -m training train ..."),
        model_dir=model_dir,
        validation_loss=_fmt(meta.get("validation_loss")),
        dropout=_dropout(model_dir),
        flags=(POEM_POSITIONS if meta.get("packing") == PACKING else "")
        + (SOUND_EMBEDDINGS if hp.get("sound_embeddings") else "")
        + (RHYMING_STANZAS.format(k=hp["rhyming_stanzas"]) if hp.get("rhyming_stanzas") else "")
        + "".join(RHYMING_CHUNKS.format(form=f, k=k) for f, k in (hp.get("rhyming_chunks") or {}).items()),
        **{k: hp.get(k) for k in ("weight_decay", "lr", "warmup", "min_lr", "batch_size", "grad_accum", "block")},
    )


POEM_POSITIONS = (
    "\nThe last run read every packed poem from its own form tag at position 0, attending only to itself, as the"
    " engine prompts it (training/dataset.py `pack`)."
)


SOUND_EMBEDDINGS = (
    "\nThe last run trained shared rhyme-key and tone vectors into the syllable embeddings (`--sound-embeddings`,"
    " training/sound_embeddings.py), folded into the saved embedding matrix: the saved model is a plain GPT-2."
)


RHYMING_STANZAS = (
    "\nThe last run also trained on every training stanza that keeps its form's line lengths and rhymes as a"
    " one-stanza example, {k}× over (`--rhyming-stanzas {k}`, training/dataset.py `rhyming_stanzas`)."
)


RHYMING_CHUNKS = (
    "\nThe last run also trained on {k} more copies of every {form} training chunk in which at least half the"
    " rhyme pairs the checker scores rhyme (`--rhyming-chunks {form}={k}`, training/dataset.py `rhyming_chunks`)."
)


def _dropout(model_dir: Path) -> str:
    """The last run's dropout, as the saved config has it (`train --dropout` writes it there)."""
    config = model_dir / "config.json"
    p = json.loads(config.read_text(encoding="utf-8")).get("resid_pdrop") if config.is_file() else None
    return "–" if p is None else f"{p:g}"


def _evaluation_section(model_dir: Path) -> str:
    eval_md = model_dir / "eval.md"
    return EVALUATION.format(targets=TARGETS, eval_md=eval_md.read_text(encoding="utf-8") if eval_md.is_file() else "")


def _sweep_section(sweep: dict) -> str:
    return SWEEP.format(
        openings=sweep.get("openings"),
        chosen=json.dumps(sweep.get("chosen")),
        real_d2=_fmt(sweep.get("real", {}).get("distinct_2")),
        real_kb=_percent(sweep.get("real", {}).get("known_bigrams")),
        grid="".join(
            GRID_ROW.format(
                s=r["settings"], r=r, known=_percent(r.get("known_bigrams")), disc=_fmt(r.get("discriminator"))
            )
            for r in sweep.get("grid", [])
        ),
        candidates="".join(CANDIDATES_ROW.format(**r) for r in sweep.get("candidates", [])),
    )


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _percent(x) -> str:
    """A share as a percentage; '–' where an older sweep.json lacks the figure."""
    return f"{100 * x:.1f}%" if isinstance(x, float) else "–"


def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{x:.3f}" if isinstance(x, float) else str(x)
