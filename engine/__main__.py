"""Batch generation from a JSONL file of opening lines.

    python -m engine generate --model DIR --input prompts.jsonl --output poems.jsonl
        [--backend hf|vllm|remote] [--unconstrained]

Each input row has `line` and optional `form`, `stanzas`, `scheme` and any sampling
setting (temperature, top_k, top_p, repetition_penalty, no_repeat_ngram_size,
strategy, num_beams, candidates, seed). Each output row repeats the input and
adds `text`, `lines`, `form`, `scores`, `settings` (seed included) and
`model_version`; a row that cannot be served gets `error` instead. Rows are
written in input order; all are decoded concurrently so the backend batches them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from engine.backends import BACKENDS, create_backend
from engine.engine import PoemEngine
from engine.request import InvalidRequest, PoemRequest
from engine.settings import SPECS, SamplingSettings, SettingError

MAX_IN_FLIGHT = 64  # rows decoded at once; the rest wait their turn


def request_from_row(row: dict) -> PoemRequest:
    settings = SamplingSettings(**{k: v for k, v in row.items() if k in SPECS})
    return PoemRequest(
        opening=row.get("line", ""),
        form=row.get("form"),
        stanzas=int(row.get("stanzas", 1)),
        settings=settings,
        scheme=row.get("scheme"),
    )


async def generate(engine: PoemEngine, rows: list[dict]) -> list[dict]:
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def one(row: dict) -> dict:
        try:
            request = request_from_row(row)
        except (InvalidRequest, SettingError, ValueError, TypeError) as exc:
            return {**row, "error": str(exc)}
        async with gate:
            poem = await engine.write(request)
        return {
            **row,
            "text": poem.text,
            "lines": list(poem.lines),
            "form": poem.form,
            "scores": poem.scores.as_dict(),
            "settings": poem.settings.as_dict(),
            "model_version": poem.model_version,
        }

    return await asyncio.gather(*(one(r) for r in rows))


async def run_generate(args: argparse.Namespace) -> int:
    text = await asyncio.to_thread(Path(args.input).read_text, encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    engine = await PoemEngine.create(create_backend(args.backend, args.model), constrained=not args.unconstrained)
    try:
        results = await generate(engine, rows)
    finally:
        await engine.close()
    output = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    await asyncio.to_thread(Path(args.output).write_text, output, encoding="utf-8")
    failed = sum("error" in r for r in results)
    print(f"{len(results) - failed} poems written to {args.output}; {failed} rows refused", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write poems for a JSONL file of opening lines")
    gen.add_argument("--model", required=True)
    gen.add_argument("--input", required=True)
    gen.add_argument("--output", required=True)
    gen.add_argument("--backend", default="hf", choices=BACKENDS)
    gen.add_argument("--unconstrained", action="store_true", help="decode without the form constraint")
    args = parser.parse_args(argv)
    return asyncio.run(run_generate(args))


if __name__ == "__main__":
    sys.exit(main())
