"""python -m engine generate: a JSONL of opening lines in, poems out."""

import json
import subprocess
import sys

from engine.forms import get_form
from engine.prosody import syllables


def test_generate_writes_one_poem_per_row(tiny_model_dir, tmp_path):
    rows = [
        {"line": "Mùa thu lá vàng rơi"},
        {"line": "Trăm năm trong cõi người ta", "stanzas": 2, "temperature": 0.7, "seed": 5},
        {"line": "Hà Nội", "form": "tudo", "strategy": "greedy"},
        {"line": "hello world"},
        {"line": "Mùa thu", "temperature": 9},
    ]
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "generate",
            "--model",
            str(tiny_model_dir),
            "--input",
            str(src),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in results] == [r["line"] for r in rows]  # input order kept
    for r in results[:3]:
        form = get_form(r["form"])
        assert r["text"].startswith(r["line"]) and len(r["lines"]) % 4 == 0
        assert all(
            form.length_of(i)[0] <= len(syllables(ln)) <= form.length_of(i)[1] for i, ln in enumerate(r["lines"])
        )
    assert results[1]["form"] == "lucbat" and len(results[1]["lines"]) == 8 and results[1]["settings"]["seed"] == 5
    assert "error" in results[3] and "error" in results[4]
    assert "3 poems written" in done.stderr
