"""Reading poem rows: the corpus file and the crawler's JSONL share one schema.

A row is a JSON object with at least `lines` (list of str); optional fields are
`kind`, `genre`, `genre_label`, `title`, `author`, `url`, `source`, and, from
the crawler, `stanzas` (list of lists of lines, stanza breaks kept).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "poems.jsonl.gz"


def read_rows(path: str | Path) -> Iterator[dict]:
    """Yield every well-formed poem row of a JSONL file (gzip or plain)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        for raw in f:
            raw = raw.strip()
            if not raw:
                continue
            row = json.loads(raw)
            lines = row.get("lines")
            if isinstance(lines, list) and all(isinstance(x, str) for x in lines):
                yield row
