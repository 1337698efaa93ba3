"""The promotion gate: a candidate replaces the serving model only if every check holds.

Measured for both models on the same held-out data, openings and seeds:

* cross-entropy per syllable on test-split poems (training.likelihood, the
  measure `python -m training evaluate` reports): nats over syllables and line
  breaks, so a byte-level BPE and a syllable-level model compare on the same
  units.  Check: candidate <= serving x 1.03.
* the form checker on poems written by the real engine (PoemEngine +
  HFBackend, training.evaluate.generate_eval) from test-split openings, with
  and without the decoding constraint.  Checks: each form's constrained total
  not lower (FORM_TOLERANCE of measurement slack), the copy rate of
  constrained poems <= 5%, the unconstrained total (mean over forms) not
  lower by more than 0.02.
* preference accuracy on held-out pairs (openings never trained on): the
  candidate's implicit reward r(y) = log p_candidate(y|x) - log p_serving(y|x)
  ranks the liked poem first (ties count half).  The serving model's implicit
  reward against itself is zero for every poem, so it scores 0.5: the check is
  candidate > serving.  Also recorded: how often each model's own
  log-likelihood ranks the liked poem first.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from training.corpus import CleanPoem, read_split

CE_RATIO_LIMIT = 1.03
COPY_RATE_LIMIT = 0.05
UNCONSTRAINED_DROP_LIMIT = 0.02
FORM_TOLERANCE = 0.005  # seeds are fixed, but a changed model writes other poems: half a point of slack
GATE_FORMS = ("5chu", "lucbat", "7chu", "8chu")


@dataclass
class EvalSettings:
    data_dir: Path = Path("build/data")
    ce_poems: int = 300  # test-split poems for the cross-entropy
    n_openings: int = 64  # per form, for the form checker (fewer: the free-decoding score is too noisy for 0.02)
    forms: tuple[str, ...] = GATE_FORMS
    threads: int | None = None


@dataclass
class GateResult:
    passed: bool
    checks: dict[str, dict] = field(default_factory=dict)
    serving: dict = field(default_factory=dict)
    candidate: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"passed": self.passed, "checks": self.checks}

    def table(self) -> str:
        rows = [f"{'check':<34} {'serving':>10} {'candidate':>10}  {'limit':<22} ok"]
        for name, c in self.checks.items():
            rows.append(
                f"{name:<34} {_fmt(c['serving']):>10} {_fmt(c['candidate']):>10}  {c['limit']:<22} "
                f"{'yes' if c['ok'] else 'NO'}"
            )
        rows.append("gate: " + ("PASSED" if self.passed else "FAILED"))
        return "\n".join(rows)


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class Scorer:
    """Log-probabilities of texts under one model directory (any tokenizer the engine loads)."""

    def __init__(self, model_dir: str | Path, threads: int | None = None):
        from transformers import AutoTokenizer, GPT2LMHeadModel

        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self.model = GPT2LMHeadModel.from_pretrained(str(model_dir), local_files_only=True, dtype=torch.float32).eval()
        self.context = self.model.config.n_positions

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def logprob(self, prompt: str, completion: str) -> float:
        """log p(completion | prompt), summed over the completion's tokens."""
        prompt_ids, full = self._ids(prompt), self._ids(prompt + completion)
        start = _common_prefix(prompt_ids, full)  # a tokenizer may merge across the boundary (a syllable one does not)
        full = full[: self.context]
        if start == 0:
            start = 1
        ids = torch.tensor([full])
        logp = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        targets = ids[0, 1:]
        return float(logp[torch.arange(start - 1, len(full) - 1), targets[start - 1 :]].sum())


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def pair_accuracy(candidate: Scorer, serving: Scorer, pairs: list[dict]) -> dict:
    """How often the candidate's implicit reward, and each model's likelihood, rank the liked poem first."""
    reward = cand_ll = serv_ll = 0.0
    for p in pairs:
        c_ch, c_rej = candidate.logprob(p["prompt"], p["chosen"]), candidate.logprob(p["prompt"], p["rejected"])
        s_ch, s_rej = serving.logprob(p["prompt"], p["chosen"]), serving.logprob(p["prompt"], p["rejected"])
        reward += _win((c_ch - s_ch) - (c_rej - s_rej))
        cand_ll += _win(c_ch - c_rej)
        serv_ll += _win(s_ch - s_rej)
    n = len(pairs)
    if not n:
        return {"pairs": 0}
    return {
        "pairs": n,
        "reward_accuracy_candidate": round(reward / n, 4),
        "reward_accuracy_serving": 0.5,
        "likelihood_accuracy_candidate": round(cand_ll / n, 4),
        "likelihood_accuracy_serving": round(serv_ll / n, 4),
    }


def _win(margin: float) -> float:
    return 1.0 if margin > 1e-6 else 0.0 if margin < -1e-6 else 0.5


def form_metrics(model_dir: Path, settings: EvalSettings, test: list[CleanPoem], training_lines: set[str]) -> dict:
    """The form checker on poems written by the real engine, via training.evaluate."""
    from training.evaluate import generate_eval
    from training.generate import openings

    by_form = openings(test, training_lines, tuple(settings.forms), settings.n_openings)
    results, _ = asyncio.run(generate_eval(Path(model_dir), by_form, training_lines, settings.threads))
    return summarise_generation(results)


def summarise_generation(results: dict) -> dict:
    constrained, free = results.get("constrained", {}), results.get("unconstrained", {})
    n_con = sum(r["n"] for r in constrained.values())
    return {
        "constrained_total": {f: r["total"] for f, r in constrained.items()},
        "constrained_copy_rate": round(sum(r["copy_rate"] * r["n"] for r in constrained.values()) / n_con, 4)
        if n_con
        else 0.0,
        "unconstrained_total": round(sum(r["total"] for r in free.values()) / len(free), 4) if free else 0.0,
        "unconstrained_copy_rate": round(max((r["copy_rate"] for r in free.values()), default=0.0), 4),
        "detail": results,
    }


def measure(model_dir: Path, settings: EvalSettings, test: list[CleanPoem], training_lines: set[str]) -> dict:
    # The same measure as `python -m training evaluate` (training.likelihood), on the same plain test poems.
    from training.likelihood import PoemScorer, cross_entropy_per_syllable, eval_poems

    ce = cross_entropy_per_syllable(PoemScorer(model_dir), eval_poems(test, settings.ce_poems))
    out = {"ce_per_syllable": ce["nats_per_syllable"]}
    out.update(form_metrics(model_dir, settings, test, training_lines))
    return out


def judge(serving: dict, candidate: dict, pairs: dict) -> GateResult:
    """Compare the two models' figures; every check is recorded."""
    checks: dict[str, dict] = {}

    def check(name: str, s, c, limit: str, ok: bool) -> None:
        checks[name] = {"serving": s, "candidate": c, "limit": limit, "ok": bool(ok)}

    s_ce, c_ce = serving["ce_per_syllable"], candidate["ce_per_syllable"]
    check(
        "ce_per_syllable",
        s_ce,
        c_ce,
        f"<= serving x {CE_RATIO_LIMIT}",
        math.isfinite(c_ce) and c_ce <= s_ce * CE_RATIO_LIMIT,
    )
    for form, s_total in serving["constrained_total"].items():
        c_total = candidate["constrained_total"].get(form, 0.0)
        check(
            f"constrained_total.{form}",
            s_total,
            c_total,
            f">= serving - {FORM_TOLERANCE}",
            c_total >= s_total - FORM_TOLERANCE,
        )
    check(
        "constrained_copy_rate",
        serving["constrained_copy_rate"],
        candidate["constrained_copy_rate"],
        f"<= {COPY_RATE_LIMIT}",
        candidate["constrained_copy_rate"] <= COPY_RATE_LIMIT,
    )
    check(
        "unconstrained_total",
        serving["unconstrained_total"],
        candidate["unconstrained_total"],
        f">= serving - {UNCONSTRAINED_DROP_LIMIT}",
        candidate["unconstrained_total"] >= serving["unconstrained_total"] - UNCONSTRAINED_DROP_LIMIT,
    )
    if pairs.get("pairs"):
        check(
            "heldout_pair_accuracy",
            pairs["reward_accuracy_serving"],
            pairs["reward_accuracy_candidate"],
            f"> serving ({pairs['pairs']} pairs)",
            pairs["reward_accuracy_candidate"] > pairs["reward_accuracy_serving"],
        )
    else:
        check("heldout_pair_accuracy", None, None, "needs held-out pairs", False)
    return GateResult(all(c["ok"] for c in checks.values()), checks, serving, candidate)


def evaluate_pair(
    serving_dir: Path,
    candidate_dir: Path,
    heldout_pairs: list[dict],
    settings: EvalSettings,
    serving_figures: dict | None = None,
) -> GateResult:
    """Measure both models (or reuse the serving model's figures) and judge the candidate."""
    from training.generate import training_line_set

    test = read_split(settings.data_dir / "test.jsonl")
    training_lines = training_line_set(read_split(settings.data_dir / "train.jsonl"))
    serving = serving_figures or measure(serving_dir, settings, test, training_lines)
    candidate = measure(candidate_dir, settings, test, training_lines)
    pairs = pair_accuracy(Scorer(candidate_dir, settings.threads), Scorer(serving_dir, settings.threads), heldout_pairs)
    result = judge(serving, candidate, pairs)
    result.checks["heldout_pair_accuracy"].update({k: v for k, v in pairs.items() if k.startswith("likelihood")})
    return result
