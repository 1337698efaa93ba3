"""Evaluate a model directory: eval.json and eval.md next to the weights.

    python -m training evaluate --model models/tho-gpt2-cpu [--n-openings 40] [--latency-requests 20]

Measures
- validation perplexity (packed validation blocks read as training reads them,
  each poem at its own positions; the weights in float32);
- cross-entropy per syllable on plain test-split poems (comparable across
  tokenizers) and the end token's probability right after each line
  (training.likelihood);
- for opening lines of test-split poems (never seen as a line in training),
  per form, with and without the decoding constraint: the form checker's
  scores (length, tone, rhyme, total), distinct-1/2, copy rate (share of
  generated lines found verbatim in the training split), ROUGE-L and BLEU-4
  of lines 2-4 against the poem's real lines 2-4;
- latency: one 4-line poem for one user, requests one after another, p50 and p90.
Poems are written by the real engine (PoemEngine + HFBackend) with the model
directory's default sampling settings (the sweep's choice) and fixed seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path

import torch

from engine.backends.hf import DEFAULT_TORCH_THREADS
from engine.engine import PoemEngine
from engine.forms import LINES_PER_STANZA, check
from engine.model_dir import read_model_info
from engine.request import PoemRequest
from engine.settings import SamplingSettings
from training import metrics
from training.corpus import read_split
from training.generate import (
    Opening,
    eval_backend,
    known_syllables,
    latency,
    openings,
    score_unconstrained,
    training_line_set,
    write_all,
)
from training.likelihood import PoemScorer, cross_entropy_per_syllable, end_probabilities, eval_poems

EVAL_FORMS = ("5chu", "lucbat", "7chu", "8chu")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", type=Path, help="data directory (default: <work>/data)")
    p.add_argument("--n-openings", type=int, default=40, help="openings per form")
    p.add_argument("--forms", nargs="*", default=list(EVAL_FORMS))
    p.add_argument("--latency-requests", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)


@torch.no_grad()
def validation_perplexity(scorer: PoemScorer, data_dir: Path, max_blocks: int = 400) -> dict:
    from training.dataset import encode, example_texts, loss, pack

    tokenizer, model = scorer.tokenizer, scorer.model
    examples = encode(list(example_texts(read_split(data_dir / "validation.jsonl"))), tokenizer)
    # a validation split shorter than one row of 256 (a small corpus) is read as one shorter row
    block = min(256, model.config.n_positions - 1, sum(map(len, examples)) - 1)
    blocks = pack(examples, block, 0, model.config.n_positions - 1)
    blocks = blocks[:max_blocks]
    total = 0.0
    for i in range(0, len(blocks), 16):
        total += float(loss(model, blocks[i : i + 16], reduction="sum"))
    tokens = blocks.ids[:, 1:].numel()
    return {"loss": round(total / tokens, 4), "perplexity": round(math.exp(total / tokens), 2), "tokens": tokens}


def generation_metrics(
    poems,
    items: list[Opening],
    training_lines: set[str],
    known: set[str],
    constrained: bool,
    bigrams: set = frozenset(),
) -> dict:
    scores, written = [], []
    rouge, bleu = [], []
    for poem, item in zip(poems, items, strict=False):
        if constrained:
            lines, s = list(poem.lines), poem.scores.as_dict()
        else:
            lines, s = score_unconstrained(poem)
        scores.append(s)
        generated = lines[1:]
        written.append(generated)
        hyp, ref = " ".join(generated), " ".join(item.reference)
        rouge.append(metrics.rouge_l(hyp, ref))
        bleu.append(metrics.bleu(hyp, ref))
    n = len(scores)
    out = {k: round(sum(s[k] for s in scores) / n, 4) for k in ("length", "tone", "rhyme", "total")}
    out.update(
        {
            "n": n,
            "distinct_1": round(metrics.distinct_n(written, 1), 4),
            "distinct_2": round(metrics.distinct_n(written, 2), 4),
            "copy_rate": round(metrics.copy_rate([ln for w in written for ln in w], training_lines), 4),
            "known_syllables": round(metrics.known_syllable_rate([ln for w in written for ln in w], known), 4),
            "known_bigrams": round(metrics.known_bigram_rate([ln for w in written for ln in w], bigrams), 4),
            "discriminator": round(
                metrics.discriminator_accuracy(
                    ["\n".join(w) for w in written], ["\n".join(i.reference) for i in items]
                ),
                4,
            ),
            "rouge_l": round(sum(rouge) / n, 4),
            "bleu": round(sum(bleu) / n, 4),
        }
    )
    return out


async def generate_eval(
    model_dir: Path, by_form: dict[str, list[Opening]], training_lines: set[str], threads: int | None
) -> tuple[dict, dict]:
    known = known_syllables(training_lines)
    bigrams = metrics.bigrams_of(training_lines)
    results: dict = {"constrained": {}, "unconstrained": {}, "real": {}}
    for form, items in by_form.items():  # the same figures for the poems' real lines 2-4
        real = [list(i.reference) for i in items]
        if real:
            results["real"][form] = {
                "n": len(real),
                **metrics.line_figures(real, training_lines, bigrams),
                **{
                    k: round(sum(check([i.line, *i.reference], form).as_dict()[k] for i in items) / len(items), 4)
                    for k in ("length", "tone", "rhyme", "total")
                },
            }
    samples: dict = {"constrained": {}, "unconstrained": {}}
    for constrained in (True, False):
        mode = "constrained" if constrained else "unconstrained"
        backend = eval_backend(model_dir, threads)
        engine = await PoemEngine.create(backend, constrained=constrained)
        try:
            for form, items in by_form.items():
                if not items:
                    continue
                t = time.perf_counter()
                reqs = [PoemRequest(o.line, form=form, settings=SamplingSettings(seed=i)) for i, o in enumerate(items)]
                poems = await write_all(engine, reqs)
                results[mode][form] = generation_metrics(poems, items, training_lines, known, constrained, bigrams)
                results[mode][form]["seconds"] = round(time.perf_counter() - t, 1)
                # No samples are kept: each opens with a line of a corpus poem, and the corpus is not
                # republished. Samples for the model card are written from openings of our own
                # (`python -m engine generate`, see the README).
                print(f"{mode:>13} {form:>6}: " + ", ".join(f"{k}={v}" for k, v in results[mode][form].items()))
        finally:
            await engine.close()
    return results, samples


def evaluate(
    model_dir: Path,
    data_dir: Path,
    n_openings: int = 40,
    forms=EVAL_FORMS,
    latency_requests: int = 20,
    threads: int | None = None,
) -> dict:
    t0 = time.perf_counter()
    info = read_model_info(model_dir)
    train = read_split(data_dir / "train.jsonl")
    training_lines = training_line_set(train)
    test = read_split(data_dir / "test.jsonl")
    by_form = openings(test, training_lines, tuple(forms), n_openings)
    scorer = PoemScorer(model_dir)  # one load for the three likelihood measures
    ppl = validation_perplexity(scorer, data_dir)
    print(f"validation perplexity {ppl['perplexity']} (loss {ppl['loss']}, {ppl['tokens']} tokens)")
    poems = eval_poems(test)
    xent = cross_entropy_per_syllable(scorer, poems)
    print(
        f"test cross-entropy per syllable {xent['nats_per_syllable']} nats ({xent['poems']} poems, "
        f"{xent['syllables']} syllables and line breaks)"
    )
    ends = end_probabilities(scorer, poems)
    del scorer
    print("end token after line 1, 2, ...: " + "; ".join(f"{f} {v[:LINES_PER_STANZA]}" for f, v in ends.items()))
    results, samples = asyncio.run(generate_eval(model_dir, by_form, training_lines, threads))
    lat_openings = [(f, o.line) for f in ("5chu", "lucbat") for o in by_form.get(f, [])[:10]] or [
        (f, o.line) for f, items in by_form.items() for o in items[:10]
    ]
    lat = (
        asyncio.run(latency(model_dir, SamplingSettings(), latency_requests, lat_openings, threads))
        if latency_requests and lat_openings
        else {}
    )
    if lat:
        print(f"latency, one 4-line poem for one user: p50 {lat['p50_s']} s, p90 {lat['p90_s']} s")
    report = {
        "model": info.version,
        "defaults": info.defaults,
        "validation": ppl,
        "test_cross_entropy": xent,
        "end_token_after_line": ends,
        "generation": results,
        "openings_per_form": {f: len(v) for f, v in by_form.items()},
        "latency_4_lines": lat,
        "torch_threads": threads or DEFAULT_TORCH_THREADS,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (model_dir / "eval.json").write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (model_dir / "eval.md").write_text(markdown(report), encoding="utf-8")
    return report


def markdown(report: dict) -> str:
    rows = [
        "| form | decoding | n | length | tone | rhyme | **total** | distinct-1 | distinct-2 | copy rate | "
        "known syllables | known bigrams | discriminator | ROUGE-L | BLEU-4 |",
        "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |",
    ]
    gen = report["generation"]
    for form in gen.get("constrained", {}):
        for mode in ("constrained", "unconstrained"):
            r = gen.get(mode, {}).get(form)
            if r:
                rows.append(
                    f"| {form} | {mode} | {r['n']} | {r['length']:.3f} | {r['tone']:.3f} | {r['rhyme']:.3f} | "
                    f"**{r['total']:.3f}** | {r['distinct_1']:.3f} | {r['distinct_2']:.3f} | "
                    f"{100 * r['copy_rate']:.1f}% | {100 * r['known_syllables']:.1f}% | "
                    f"{100 * r.get('known_bigrams', 0):.1f}% | {r.get('discriminator', float('nan')):.3f} | "
                    f"{r['rouge_l']:.3f} | {r['bleu']:.3f} |"
                )
        r = gen.get("real", {}).get(form)
        if r:
            rows.append(
                f"| {form} | real lines 2-4 | {r['n']} | {r['length']:.3f} | {r['tone']:.3f} | "
                f"{r['rhyme']:.3f} | **{r['total']:.3f}** | | {r['distinct_2']:.3f} | "
                f"{100 * r['copy_rate']:.1f}% | | {100 * r['known_bigrams']:.1f}% | 0.5 (by definition) | | |"
            )
    v = report["validation"]
    lat = report.get("latency_4_lines") or {}
    head = [
        f"Validation perplexity: **{v['perplexity']}** (cross-entropy {v['loss']} nats/token over "
        f"{v['tokens']} tokens of held-out poems).",
        "",
    ]
    if report.get("test_cross_entropy"):
        x = report["test_cross_entropy"]
        head += [
            f"Test cross-entropy per syllable: **{x['nats_per_syllable']}** nats (over {x['syllables']} "
            f"syllables and line breaks of {x['poems']} test-split poems; comparable across tokenizers).",
            "",
        ]
    if report.get("end_token_after_line"):
        head += [
            "Probability of the end token right after line 1, 2, 3, 4 of the same test-split poems (a poem "
            "ends only after whole stanzas: after lines 1-3 it is how often free decoding stops short): "
            + "; ".join(
                f"{form} {', '.join(f'{p:.3f}' for p in ps[:LINES_PER_STANZA])}"
                for form, ps in report["end_token_after_line"].items()
            )
            + ".",
            "",
        ]
    if lat:
        head += [
            f"Latency, one 4-line poem for one user with the default settings, {lat['n']} requests one after "
            f"another, {report['torch_threads']} torch threads: **p50 {lat['p50_s']} s**, p90 {lat['p90_s']} s.",
            "",
        ]
    head += [f"Sampling settings: the model's defaults {json.dumps(report['defaults'])}, seed = request index.", ""]
    return "\n".join(head + rows) + "\n"


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    return evaluate(
        args.model,
        args.data or Path(args.work) / "data",
        args.n_openings,
        tuple(args.forms),
        args.latency_requests,
        args.threads or None,
    )
