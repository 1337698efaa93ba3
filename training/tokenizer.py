"""The syllable tokenizer, built on the poems, with the prompt format's special tokens.

`build_syllable_tokenizer`: one token per syllable, see engine/syllable_text.py
for the text layout it reads. Saved as an ordinary tokenizer.json (WordLevel
model, regex Split pre-tokenizer, Fuse decoder) that
`AutoTokenizer.from_pretrained(dir)` and vLLM load with no code of ours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from engine.prompt import END_OF_POEM, LINE_SEPARATOR, SPECIAL_TOKENS
from engine.prosody import is_vietnamese_syllable
from engine.syllable_text import PUNCTUATION, UNKNOWN, SyllableCodec, is_punctuation, is_word, pieces

MIN_SYLLABLE_COUNT = 10  # rarer spellings are mostly typos and fragments of loanwords
# A capitalised form seen this often mid-line gets a token of its own: names
# ("Huế ", "Nội ", "Bình ") and the capitalised pronouns poets use ("Mẹ ", "Em ").
MIN_NAME_COUNT = 20


def with_special_tokens(tok: Tokenizer, unk_token: str) -> PreTrainedTokenizerFast:
    """`tok` for transformers and vLLM: the end token starts, ends and pads; the form tags are special."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=END_OF_POEM,
        eos_token=END_OF_POEM,
        unk_token=unk_token,
        pad_token=END_OF_POEM,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t != END_OF_POEM],
        clean_up_tokenization_spaces=False,
    )


def syllable_counts(poems_lines: Iterable[list[str]]) -> tuple[Counter, Counter, Counter]:
    """Counts of lower-case syllables, of capitalised forms mid-line, and of punctuation runs."""
    lower: Counter = Counter()
    capital_mid: Counter = Counter()
    punctuation: Counter = Counter()
    for lines in poems_lines:
        for line in lines:
            words = 0
            for piece in pieces(line):
                if not is_word(piece):
                    if is_punctuation(piece):
                        punctuation[piece] += 1
                    continue
                words += 1
                if not is_vietnamese_syllable(piece):
                    continue
                lower[piece.lower()] += 1
                if words > 1 and piece[:1].isupper() and (len(piece) == 1 or piece[1:].islower()):
                    capital_mid[piece] += 1
    return lower, capital_mid, punctuation


def build_syllable_tokenizer(
    poems_lines: Iterable[list[str]], min_count: int = MIN_SYLLABLE_COUNT, name_min_count: int = MIN_NAME_COUNT
) -> tuple[PreTrainedTokenizerFast, dict]:
    """A one-token-per-syllable tokenizer from poems (lists of lines), and its coverage figures."""
    lower, capital_mid, punctuation = syllable_counts(poems_lines)
    syllables = [w for w, n in lower.most_common() if n >= min_count]
    names = [w for w, n in capital_mid.most_common() if n >= name_min_count]
    marks = list(dict.fromkeys([*PUNCTUATION, *(p for p, n in punctuation.most_common() if n >= min_count)]))
    vocab_tokens = [
        UNKNOWN,
        LINE_SEPARATOR,
        *(p + " " for p in marks),
        *(w + " " for w in syllables),
        *(w + " " for w in names),
    ]
    specials = list(SPECIAL_TOKENS)
    vocab = {t: i for i, t in enumerate(specials + vocab_tokens)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNKNOWN))
    # Each piece is a run of non-space characters with the one space after it,
    # or a line break: exactly the pieces SyllableCodec.to_model writes.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[^ \n]+ ?|\n"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = with_special_tokens(tok, unk_token=UNKNOWN)
    total = sum(lower.values())
    kept = sum(lower[w] for w in syllables)
    stats = {
        "min_count": min_count,
        "syllables": len(syllables),
        "names": len(names),
        "vocab_size": len(tokenizer),
        "distinct_syllables_seen": len(lower),
        "coverage": round(kept / max(1, total), 5),
    }
    return tokenizer, stats


def round_trip_share(tokenizer: PreTrainedTokenizerFast, poems_lines: Iterable[list[str]]) -> dict:
    """The share of poems the tokenizer writes back exactly: normalise(decode(encode(poem))) == poem."""
    codec = SyllableCodec(tokenizer.get_vocab())
    n = covered = exact = 0
    for lines in poems_lines:
        n += 1
        if not all(codec.lossless(line) for line in lines):
            continue
        covered += 1
        text = LINE_SEPARATOR.join(lines)
        ids = tokenizer(codec.to_model(text), add_special_tokens=False)["input_ids"]
        back = codec.from_model(tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        exact += back == text
    return {
        "poems": n,
        "all_in_vocabulary": covered,
        "round_trip_exact": exact,
        "share_in_vocabulary": round(covered / max(1, n), 4),
    }


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, out_dir: str | Path) -> None:
    tokenizer.save_pretrained(str(out_dir))


def train_from_split(
    train_path: str | Path,
    out_dir: str | Path,
    min_count: int = MIN_SYLLABLE_COUNT,
    test_path: str | Path | None = None,
) -> PreTrainedTokenizerFast:
    """`python -m training tokenizer`: built on the training split, saved to out_dir.

    It prints its size, the share of the training
    split's syllables it covers and the share of test-split poems that
    round-trip exactly.
    """
    import json

    from training.corpus import read_split

    train = read_split(train_path)
    tokenizer, stats = build_syllable_tokenizer((p.lines for p in train), min_count)
    if test_path is not None and Path(test_path).is_file():
        stats["test_split"] = round_trip_share(tokenizer, (p.lines for p in read_split(test_path)))
    save_tokenizer(tokenizer, out_dir)
    (Path(out_dir) / "tokenizer_stats.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    print(
        f"syllable tokenizer: {stats['vocab_size']} tokens ({stats['syllables']} syllables seen at least "
        f"{min_count} times, {stats['names']} capitalised names), covering {100 * stats['coverage']:.2f}% of "
        f"the training split's {stats['distinct_syllables_seen']}-spelling syllable stream -> {out_dir}"
    )
    if "test_split" in stats:
        t = stats["test_split"]
        print(
            f"test split: {t['all_in_vocabulary']}/{t['poems']} poems ({100 * t['share_in_vocabulary']:.1f}%) "
            f"have every piece in the vocabulary; {t['round_trip_exact']} of them round-trip exactly"
        )
    return tokenizer
