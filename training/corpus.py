"""Reading and cleaning poem rows: the corpus file and the crawler's JSONL share one schema.

A row is a JSON object with at least `lines` (list of str); optional fields are
`kind`, `genre`, `genre_label`, `title`, `author`, `url`, `source`, and, from
the crawler, `stanzas` (list of lists of lines, stanza breaks kept).

Cleaning, in order (`clean_row`):
1. every line NFC, stray markup (HTML tags and entities, markdown emphasis,
   zero-width characters) and leading numbering ("1.", "II -", "(3)", "•")
   removed, spaces collapsed, no space before punctuation ("liều ." -> "liều.");
2. lines that are not verse dropped: separators ("***", "---"), a first line
   repeating the title, a last line that is the author's signature or a date;
3. one casing rule for every source: the first letter of each line upper case,
   the rest as written;
4. junk rejected: fewer than 4 lines, lines of prose length, too few
   Vietnamese syllables, or no form `engine.forms.label_form` recognises.
Each kept poem is labelled with `label_form` (not the corpus's heuristic
`genre`), authors are capped (`cap_authors`) and poems are split by a hash of
their text (`split_of`), so a poem and its exact duplicates land in one split.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.forms import LINES_PER_STANZA, MAX_STANZAS, label_form
from engine.prosody import is_vietnamese_syllable, syllables

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "poems.jsonl.gz"

MIN_LINES = 4
MAX_LINE_SYLLABLES = 12  # longer lines are prose (label_form also rejects them)
MIN_VIETNAMESE_SHARE = 0.9  # of syllables spelt with Vietnamese letters
MIN_MARKED_SHARE = 0.25  # of syllables with a diacritic or đ: plain ASCII text is not Vietnamese
AUTHOR_CAP = 300
SPLIT_FRACTIONS = {"validation": 0.02, "test": 0.02}  # the rest is train
CHUNK_LINES = LINES_PER_STANZA * MAX_STANZAS  # a training example has at most 4 stanzas

_TAG = re.compile(r"<[^>]{0,200}>")
_MARKDOWN = re.compile(r"(\*\*|__|~~|`)")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# "1." "12)" "(3)" "IV." "a)" "-" "•" "+" at the start of a line, followed by a space.
_NUMBERING = re.compile(r"^\s*(?:\(?\d{1,3}[.)/:\-]|\(\d{1,3}\)|[IVXLC]{1,6}[.)]|[a-zđ]\)|[-–—•*+·>]+)\s+")
_SEPARATOR = re.compile(r"^[\W\d_]*$")  # no letter at all: "***", "---", "1", "..."
_DATE = re.compile(r"\b\d{1,2}\s*[/.\-]\s*\d{1,2}(\s*[/.\-]\s*\d{2,4})?\b|\b(19|20)\d{2}\b")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+(?=[,.!?;:…])")  # "liều ." -> "liều.": a typing slip, not a style


def read_rows(path: str | Path) -> Iterator[dict]:
    """Yield every well-formed poem row of a JSONL file (gzip or plain)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError:  # e.g. the last line of a crawl cut off mid-write
                continue
            if not isinstance(row, dict):
                continue
            lines = row.get("lines")
            if not isinstance(lines, list) and isinstance(row.get("stanzas"), list):
                lines = [ln for stanza in row["stanzas"] for ln in stanza]  # crawler rows with stanzas only
                row["lines"] = lines
            if isinstance(lines, list) and all(isinstance(x, str) for x in lines):
                yield row


@dataclass(frozen=True)
class CleanPoem:
    lines: tuple[str, ...]
    form: str  # from engine.forms.label_form
    author: str
    source: str
    title: str = ""

    @property
    def key(self) -> str:
        """Identity of a poem's text: case, punctuation and spacing ignored."""
        return hashlib.sha1(" ".join(poem_key_text(ln) for ln in self.lines).encode()).hexdigest()


def poem_key_text(line: str) -> str:
    """A line reduced to its lowercase syllables, for duplicate and copy checks."""
    return " ".join(s.lower() for s in syllables(line))


def normalise_line(line: str) -> str:
    """NFC, no markup, no leading numbering, single spaces, first letter upper case."""
    text = unicodedata.normalize("NFC", html.unescape(line)).translate(_INVISIBLE)
    text = _TAG.sub(" ", text)
    text = _MARKDOWN.sub("", text)
    text = _SPACE_BEFORE_PUNCT.sub("", _SPACES.sub(" ", text)).strip()
    for _ in range(2):  # "1. - Câu thơ" has two layers
        text = _NUMBERING.sub("", text, count=1).strip()
    text = text.strip("\"'“”‘’ ")
    if not text:
        return ""
    return text[0].upper() + text[1:]


def _loose(text: str) -> str:
    return " ".join(poem_key_text(text).split())


def _is_signature(line: str, author: str) -> bool:
    """A closing line that names the author, or carries a date, rather than verse."""
    loose = _loose(line)
    if author and loose and (loose == _loose(author) or loose in _loose(author)):
        return True
    return bool(_DATE.search(line)) and len(syllables(line)) <= 6


def clean_lines(lines: Iterable[str], title: str = "", author: str = "") -> list[str]:
    out = [normalise_line(ln) for ln in lines]
    out = [ln for ln in out if ln and not _SEPARATOR.match(ln)]
    if out and title and _loose(out[0]) == _loose(title):
        out = out[1:]
    while out and _is_signature(out[-1], author):
        out = out[:-1]
    return out


def reject_reason(lines: list[str]) -> str | None:
    """Why a cleaned poem is junk, or None when it is kept."""
    if len(lines) < MIN_LINES:
        return "too_short"
    words = [w for ln in lines for w in syllables(ln)]
    if not words:
        return "empty"
    if any(len(syllables(ln)) > MAX_LINE_SYLLABLES for ln in lines):
        return "prose"
    if sum(is_vietnamese_syllable(w) for w in words) < MIN_VIETNAMESE_SHARE * len(words):
        return "not_vietnamese"
    if sum(any(not ch.isascii() for ch in w) for w in words) < MIN_MARKED_SHARE * len(words):
        return "not_vietnamese"
    if label_form(lines) is None:
        return "no_form"
    return None


def clean_row(row: dict) -> tuple[CleanPoem | None, str | None]:
    """A cleaned, labelled poem, or (None, the reason it was dropped)."""
    author = _SPACES.sub(" ", unicodedata.normalize("NFC", str(row.get("author") or ""))).strip()
    title = str(row.get("title") or "")
    lines = clean_lines(row.get("lines") or [], title=title, author=author)
    reason = reject_reason(lines)
    if reason:
        return None, reason
    return CleanPoem(tuple(lines), label_form(lines), author, str(row.get("source") or "unknown"), title), None


def cap_authors(poems: list[CleanPoem], cap: int = AUTHOR_CAP) -> list[CleanPoem]:
    """At most `cap` poems per named author, chosen by hash (stable across runs)."""
    by_author: dict[str, list[CleanPoem]] = defaultdict(list)
    for p in poems:
        by_author[p.author.lower()].append(p)
    keep: set[int] = set()
    for author, group in by_author.items():
        if not author or len(group) <= cap:
            keep.update(id(p) for p in group)
        else:
            keep.update(id(p) for p in sorted(group, key=lambda p: p.key)[:cap])
    return [p for p in poems if id(p) in keep]


def split_of(poem: CleanPoem, fractions: dict[str, float] = SPLIT_FRACTIONS) -> str:
    """train / validation / test from the hash of the poem's text: deterministic, by poem."""
    u = int(poem.key[:8], 16) / 0x1_0000_0000
    edge = 0.0
    for name, share in fractions.items():
        edge += share
        if u < edge:
            return name
    return "train"


def chunks(poem: CleanPoem) -> list[tuple[str, list[str]]]:
    """Stanza-aligned training examples of 1-4 stanzas: (form, lines) each.

    Lines past the last whole stanza are dropped (the engine writes whole
    stanzas); each chunk is labelled again, since a part of a free poem may
    well be a regular 5 chữ stanza.
    """
    lines = list(poem.lines)
    whole = len(lines) // LINES_PER_STANZA * LINES_PER_STANZA
    out = []
    for start in range(0, whole, CHUNK_LINES):
        part = lines[start : min(start + CHUNK_LINES, whole)]
        form = label_form(part)
        if form:
            out.append((form, part))
    return out


@dataclass
class Prepared:
    splits: dict[str, list[CleanPoem]]
    dropped: Counter
    duplicates: int

    def counts(self) -> dict:
        return {
            "splits": {
                name: dict(Counter(p.form for p in poems)) | {"all": len(poems)} for name, poems in self.splits.items()
            },
            "sources": dict(Counter(p.source for poems in self.splits.values() for p in poems).most_common()),
            "dropped": dict(self.dropped) | {"duplicate": self.duplicates},
        }

    def summary(self) -> str:
        rows = []
        for name, poems in self.splits.items():
            forms = Counter(p.form for p in poems)
            rows.append(
                f"{name:>10}: {len(poems):6d} poems  " + "  ".join(f"{f}={n}" for f, n in sorted(forms.items()))
            )
        sources = Counter(p.source for poems in self.splits.values() for p in poems)
        rows.append(
            "dropped: "
            + ", ".join(f"{k}={v}" for k, v in self.dropped.most_common())
            + f", duplicate={self.duplicates}"
        )
        rows.append("per source:")
        rows += [f"  {n:6d}  {s[:90]}" for s, n in sources.most_common()]
        return "\n".join(rows)


def prepare(rows: Iterable[dict], author_cap: int = AUTHOR_CAP) -> Prepared:
    """Raw rows -> cleaned, labelled, de-duplicated, author-capped poems, split."""
    dropped: Counter = Counter()
    seen: set[str] = set()
    poems: list[CleanPoem] = []
    duplicates = 0
    for row in rows:
        poem, reason = clean_row(row)
        if poem is None:
            dropped[reason] += 1
            continue
        if poem.key in seen:
            duplicates += 1
            continue
        seen.add(poem.key)
        poems.append(poem)
    before = len(poems)
    poems = cap_authors(poems, author_cap)
    dropped["author_cap"] = before - len(poems)
    splits: dict[str, list[CleanPoem]] = {"train": [], "validation": [], "test": []}
    for p in poems:
        splits[split_of(p)].append(p)
    return Prepared(splits, dropped, duplicates)


def write_split(poems: list[CleanPoem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for p in poems:
            f.write(json.dumps({**asdict(p), "lines": list(p.lines)}, ensure_ascii=False) + "\n")


def read_split(path: str | Path) -> list[CleanPoem]:
    with open(path, encoding="utf-8") as f:
        return [CleanPoem(**{**(d := json.loads(ln)), "lines": tuple(d["lines"])}) for ln in f if ln.strip()]


def data_hash(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def prepare_files(inputs: Iterable[Path], out_dir: Path, author_cap: int = AUTHOR_CAP) -> Prepared:
    """`python -m training data`: read every input, clean, split, write, print the summary."""

    def rows():
        for path in inputs:
            yield from read_rows(path)

    prepared = prepare(rows(), author_cap)
    for name, poems in prepared.splits.items():
        write_split(poems, Path(out_dir) / f"{name}.jsonl")
    (Path(out_dir) / "summary.json").write_text(
        json.dumps(prepared.counts(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    print(prepared.summary())
    return prepared


def rows_read(counts: dict) -> int:
    """The rows `prepare` read, from its summary.json: each one is in a split or dropped for a reason."""
    return sum(split["all"] for split in counts["splits"].values()) + sum(counts.get("dropped", {}).values())
