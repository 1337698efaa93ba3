"""Text metrics on syllables: distinct-n, copy rate, ROUGE-L and BLEU-4 (no extra dependencies).

Vietnamese words are syllables separated by spaces, so every metric here
counts syllables (lower case, punctuation dropped, as engine.prosody splits them).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from training.corpus import poem_key_text


def tokens(line: str) -> list[str]:
    return poem_key_text(line).split()


def distinct_n(poems: Iterable[list[str]], n: int) -> float:
    """Distinct n-grams / all n-grams over every generated line (Li et al. 2016)."""
    grams: Counter = Counter()
    for lines in poems:
        for line in lines:
            t = tokens(line)
            grams.update(tuple(t[i : i + n]) for i in range(len(t) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def copy_rate(lines: Iterable[str], training_lines: set[str]) -> float:
    """Share of lines that occur verbatim (after normalisation) in the training set."""
    lines = [poem_key_text(ln) for ln in lines]
    lines = [ln for ln in lines if ln]
    return sum(ln in training_lines for ln in lines) / len(lines) if lines else 0.0


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on syllables (Lin 2004, beta = 1)."""
    c, r = tokens(candidate), tokens(reference)
    if not c or not r:
        return 0.0
    lcs = _lcs(c, r)
    if lcs == 0:
        return 0.0
    p, rec = lcs / len(c), lcs / len(r)
    return 2 * p * rec / (p + rec)


def bleu(candidate: str, reference: str, max_n: int = 4) -> float:
    """Sentence BLEU-4 on syllables with add-one smoothing (Lin & Och 2004, smoothing 2)."""
    c, r = tokens(candidate), tokens(reference)
    if not c or not r:
        return 0.0
    log_p = 0.0
    for n in range(1, max_n + 1):
        cg = Counter(tuple(c[i : i + n]) for i in range(len(c) - n + 1))
        rg = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
        match = sum(min(k, rg[g]) for g, k in cg.items())
        total = max(0, len(c) - n + 1)
        smooth = 0 if n == 1 else 1
        log_p += math.log((match + smooth) / (total + smooth)) if match + smooth > 0 else -math.inf
    if log_p == -math.inf:
        return 0.0
    bp = 1.0 if len(c) > len(r) else math.exp(1 - len(r) / len(c))
    return bp * math.exp(log_p / max_n)


def known_syllable_rate(lines: Iterable[str], known: set[str]) -> float:
    """Share of syllables that are real words: seen in the training split (lower case).

    The decoding constraint can push a model into spellings no Vietnamese word
    has ("mưaội"); the checker does not see them, this does.
    """
    words = [w for ln in lines for w in tokens(ln)]
    return sum(w in known for w in words) / len(words) if words else 0.0


def bigrams_of(lines: Iterable[str]) -> set[tuple[str, str]]:
    """Adjacent syllable pairs within lines (lower case)."""
    out = set()
    for line in lines:
        t = tokens(line)
        out.update(zip(t, t[1:], strict=False))
    return out


def known_bigram_rate(lines: Iterable[str], known: set[tuple[str, str]]) -> float:
    """Share of adjacent syllable pairs in the lines that occur in the training split.

    Word salad scores low; a model that only repeats stock phrases scores higher
    than real poems do, so read it beside distinct-2 and the copy rate.
    """
    pairs = [p for line in lines for p in zip(tokens(line), tokens(line)[1:], strict=False)]
    return sum(p in known for p in pairs) / len(pairs) if pairs else 0.0


def line_figures(poems: list[list[str]], training_lines: set[str], bigrams: set[tuple[str, str]]) -> dict:
    """distinct-2, known-bigram rate and copy rate of poems' lines, for written and real lines alike."""
    flat = [ln for lines in poems for ln in lines]
    return {
        "distinct_2": round(distinct_n(poems, 2), 4),
        "known_bigrams": round(known_bigram_rate(flat, bigrams), 4),
        "copy_rate": round(copy_rate(flat, training_lines), 4),
    }


def discriminator_accuracy(generated: list[str], real: list[str], folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a logistic regression on syllable uni- and bigrams telling
    generated continuations from real ones (0.5: their statistics cannot be told apart)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    texts = [" ".join(tokens(t)) for t in generated + real]
    labels = [1] * len(generated) + [0] * len(real)
    if min(len(generated), len(real)) < folds:
        return float("nan")
    model = make_pipeline(CountVectorizer(ngram_range=(1, 2), token_pattern=r"\S+"), LogisticRegression(max_iter=2000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, texts, labels, cv=cv, scoring="accuracy").mean())
