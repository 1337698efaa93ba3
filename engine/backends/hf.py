"""CPU backend: transformers GPT-2 with our own continuous-batching loop.

Why our own loop: transformers' `generate` runs one batch to its end with one
set of sampling parameters, and its continuous batching (`generate_batch`) has
no per-request logits processors for grammars. Here one worker thread owns
the model and a batch of rows (one row per candidate); every step it

1. admits waiting requests: their prompts are prefilled together and their
   key/value caches joined to the running batch (left padding, explicit
   position ids, so rows of different lengths decode side by side);
2. picks each row's next token with that request's own settings (the form
   constraint as a logits mask, engine/backends/constraints.py; repetition
   penalty, no-repeat n-grams, temperature, top-k, top-p, a per-row seeded
   generator; greedy; or beam search);
3. drops finished and cancelled rows from the batch and answers their requests;
4. runs one forward step for all remaining rows.

So a request that arrives while others decode joins at the next step instead
of waiting for the whole batch, and the event loop is never blocked: the
thread only touches asyncio through call_soon_threadsafe.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.backends.base import Backend, Completion, GenerationJob, StreamDecoder, candidates, decode_completion
from engine.backends.constraints import Constraint, Constraints
from engine.model_dir import read_model_info
from engine.prompt import END_OF_POEM
from engine.settings import derive_seed

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 64  # rows decoded together; more waiting requests queue
# One intra-op thread: decoding steps are small matrices, and a second torch
# thread spinning against the event loop (and, then, the grammar compiler) made one
# poem 5-20x slower on the 2-core box (0.2-0.4 s with 1 thread, 1.2-3 s with 2).
# None leaves torch's own choice (all cores), for bigger machines.
DEFAULT_TORCH_THREADS = 1


@dataclass(eq=False)
class _Request:
    job: GenerationJob
    prompt_ids: list[int]
    resolve: Callable[[object], None]  # called in the worker with the completions or an exception
    constraint: Constraint | None  # the form, before the first token; each row decodes with its own copy
    on_token: Callable[[int], None] | None = None  # streaming (n=1): told each token as it is chosen
    cancelled: threading.Event = field(default_factory=threading.Event)
    rows: list[_Row] = field(default_factory=list)
    beams_done: list[tuple[float, list[int]]] = field(default_factory=list)
    results: list[Completion] = field(default_factory=list)
    steps: int = 0

    @property
    def beam(self) -> bool:
        return self.job.settings.strategy == "beam"


@dataclass(eq=False)
class _Row:
    req: _Request
    constraint: Constraint | None
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    score: float = 0.0  # beam search: sum of log-probabilities
    logprob: float = 0.0  # the model's own log-probability of the tokens chosen so far
    done: bool = False


class HFBackend(Backend):
    """GPT-2 on CPU from a local model directory."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_batch_rows: int = MAX_BATCH_ROWS,
        threads: int | None = DEFAULT_TORCH_THREADS,
    ):
        self.info = read_model_info(model_dir)
        self.max_batch_rows = max_batch_rows
        self.threads = threads
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._thread is not None:
            return
        await asyncio.to_thread(self._load)
        self._thread = threading.Thread(target=self._run, name=f"hf-{self.info.version}", daemon=True)
        self._thread.start()

    def _load(self) -> None:
        from transformers import AutoTokenizer, GPT2LMHeadModel

        if self.threads:
            torch.set_num_threads(self.threads)
        self.tokenizer = AutoTokenizer.from_pretrained(self.info.path, local_files_only=True)
        self.model = GPT2LMHeadModel.from_pretrained(self.info.path, local_files_only=True, dtype=torch.float32).eval()
        self.vocab_size = self.model.config.vocab_size
        self.max_positions = self.model.config.n_positions
        self.eos_id = self.tokenizer.convert_tokens_to_ids(END_OF_POEM)
        self.constraints = Constraints(self.tokenizer, self.vocab_size)

    async def close(self) -> None:
        if self._thread is None:
            return
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    # -- the async side --------------------------------------------------------------------------
    async def complete(self, job: GenerationJob) -> list[Completion]:
        return await self._submit(job)

    async def _stream_tokens(self, job: GenerationJob) -> AsyncIterator[str]:
        """The candidate's text token by token, as the worker decodes it."""
        if self._thread is None:
            await self.start()
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[int | None] = asyncio.Queue()  # at most max_new_tokens items: bounded by the job

        def on_token(token: int) -> None:  # in the worker thread
            loop.call_soon_threadsafe(tokens.put_nowait, token)

        task = asyncio.ensure_future(self._submit(job, on_token))
        # Queued after every token the worker handed over (call_soon_threadsafe keeps their order).
        task.add_done_callback(lambda _: tokens.put_nowait(None))
        decoder = StreamDecoder(self.tokenizer, self.eos_id)
        try:
            while (token := await tokens.get()) is not None:
                if piece := decoder.feed([token]):
                    yield piece
            await task  # a failed decoding raises here, after the pieces it produced
            if piece := decoder.flush():
                yield piece
        finally:
            if not task.done():
                task.cancel()  # the consumer stopped: the worker drops the row at its next step

    async def _submit(self, job: GenerationJob, on_token: Callable[[int], None] | None = None) -> list[Completion]:
        if self._thread is None:
            await self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Completion]] = loop.create_future()

        def resolve(result) -> None:
            def set_result() -> None:
                if future.done():
                    return
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

            loop.call_soon_threadsafe(set_result)

        constraint = self.constraints.for_job(job)
        prompt_ids = self.tokenizer(job.prompt, add_special_tokens=False)["input_ids"]
        request = _Request(job=job, prompt_ids=prompt_ids, resolve=resolve, constraint=constraint, on_token=on_token)
        self._queue.put(request)
        try:
            return await future
        except asyncio.CancelledError:
            request.cancelled.set()  # the worker drops its rows at the next step
            raise

    # -- the worker thread -----------------------------------------------------------------------
    def _run(self) -> None:
        with torch.inference_mode():
            _Batch(self).run()


class _Batch:
    """The running batch: rows, their caches, masks and positions."""

    def __init__(self, backend: HFBackend):
        self.b = backend
        self.rows: list[_Row] = []
        self.cache = None
        self.mask: torch.Tensor | None = None  # (rows, length) 1 for real tokens
        self.next_pos: torch.Tensor | None = None  # (rows,) position of each row's next token
        self.logits: torch.Tensor | None = None  # (rows, vocab) for each row's next token
        self.waiting: list[_Request] = []
        self.stopping = False

    def run(self) -> None:
        while True:
            if not self.rows and not self.waiting:
                if self.stopping:
                    return
                item = self.b._queue.get()
                if item is None:
                    return
                self.waiting.append(item)
            self._drain_queue()
            try:
                self._admit()
                if not self.rows:
                    continue
                self._choose_tokens()
                self._drop_finished()
                if self.rows:
                    self._forward()
            except Exception as exc:  # noqa: BLE001 - a failed step fails its requests, not the thread
                log.exception("decoding step failed")
                for req in {r.req for r in self.rows} | set(self.waiting):
                    req.resolve(exc)
                self.rows, self.waiting = [], []
                self.cache = self.mask = self.next_pos = self.logits = None

    def _drain_queue(self) -> None:
        while True:
            try:
                item = self.b._queue.get_nowait()
            except queue.Empty:
                return
            if item is None:
                self.stopping = True
            else:
                self.waiting.append(item)

    # -- admission: prefill new prompts and join their caches ------------------------------------
    def _admit(self) -> None:
        room = self.b.max_batch_rows - len(self.rows)
        admitted: list[_Request] = []
        while self.waiting and (room >= self._width(self.waiting[0]) or not self.rows and not admitted):
            req = self.waiting.pop(0)
            if req.cancelled.is_set():
                continue
            admitted.append(req)
            room -= self._width(req)
        if not admitted:
            return
        b = self.b
        prompts = [r.prompt_ids[-(b.max_positions - 1) :] for r in admitted]
        length = max(len(p) for p in prompts)
        ids = torch.zeros((len(prompts), length), dtype=torch.long)
        mask = torch.zeros((len(prompts), length), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, length - len(p) :] = torch.tensor(p)
            mask[i, length - len(p) :] = 1
        pos = (mask.cumsum(1) - 1).clamp(min=0)
        out = b.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        # Each request decodes `width` rows from one prefill.
        expand = torch.tensor([i for i, r in enumerate(admitted) for _ in range(self._width(r))])
        new_rows = []
        for r in admitted:
            settings = r.job.settings
            for k in range(self._width(r)):
                constraint = r.constraint.fork() if r.constraint is not None else None
                gen = None
                if settings.strategy == "sample":
                    gen = torch.Generator().manual_seed(derive_seed(int(settings.seed), k))
                row = _Row(req=r, constraint=constraint, generator=gen)
                if r.beam and k > 0:
                    row.score = float("-inf")  # all beams start from one prefix: keep one alive
                r.rows.append(row)
                new_rows.append(row)
        new_cache = out.past_key_values
        new_cache.batch_select_indices(expand)
        self._join(new_rows, new_cache, mask[expand], mask[expand].sum(1), out.logits[expand, -1, :].float())

    def _width(self, req: _Request) -> int:
        s = req.job.settings
        if s.strategy == "beam":
            return max(int(s.num_beams), req.job.n)
        return candidates(req.job)

    def _join(self, rows, cache, mask, next_pos, logits) -> None:
        if not self.rows:
            self.rows, self.cache, self.mask, self.next_pos, self.logits = rows, cache, mask, next_pos, logits
            return
        old_len, new_len = self.mask.shape[1], mask.shape[1]
        width = max(old_len, new_len)
        self.mask = torch.cat([_left_pad(self.mask, width), _left_pad(mask, width)])
        for old_layer, new_layer in zip(self.cache.layers, cache.layers, strict=False):
            old_layer.keys = torch.cat([_left_pad(old_layer.keys, width, 2), _left_pad(new_layer.keys, width, 2)])
            old_layer.values = torch.cat([_left_pad(old_layer.values, width, 2), _left_pad(new_layer.values, width, 2)])
        self.next_pos = torch.cat([self.next_pos, next_pos])
        self.logits = torch.cat([self.logits, logits])
        self.rows = self.rows + rows

    # -- choosing tokens ---------------------------------------------------------------------------
    def _choose_tokens(self) -> None:
        logits = self.logits.clone()
        # The form constraint first: it is a hard rule. Penalties and n-gram
        # bans below only reorder what it allows, and give way if they would
        # leave no token at all.
        for i, row in enumerate(self.rows):
            if row.constraint is not None:
                logits[i].masked_fill_(~row.constraint.allowed(), float("-inf"))
        for i, row in enumerate(self.rows):
            s = row.req.job.settings
            if s.repetition_penalty and s.repetition_penalty != 1.0:
                seen = torch.tensor(sorted(set(row.req.prompt_ids) | set(row.tokens)), dtype=torch.long)
                seen = seen[seen < logits.shape[1]]
                vals = logits[i, seen]
                logits[i, seen] = torch.where(vals > 0, vals / s.repetition_penalty, vals * s.repetition_penalty)
            if s.no_repeat_ngram_size:
                banned = _banned_ngram_tokens(row.req.prompt_ids + row.tokens, int(s.no_repeat_ngram_size))
                if banned:
                    candidate = logits[i].clone()
                    candidate[list(banned)] = float("-inf")
                    if torch.isfinite(candidate).any():
                        logits[i] = candidate

        by_beam_request: dict[int, list[int]] = {}
        for i, row in enumerate(self.rows):
            if row.req.beam:
                by_beam_request.setdefault(id(row.req), []).append(i)
            else:
                token = self._pick(row, logits[i])
                row.logprob += float(torch.log_softmax(self.logits[i], -1)[token])
                self._accept(row, token)
        for indices in by_beam_request.values():
            self._beam_step(indices, logits)

    def _pick(self, row: _Row, logits: torch.Tensor) -> int:
        s = row.req.job.settings
        if s.strategy == "greedy":
            return int(torch.argmax(logits))
        return sample_token(logits, float(s.temperature), s.top_k, s.top_p, row.generator)

    def _accept(self, row: _Row, token: int) -> None:
        b = self.b
        row.tokens.append(token)
        if row.req.on_token is not None:
            row.req.on_token(token)
        if row.constraint is not None:
            if not row.constraint.accept(token):
                log.error("the form refused token %d; ending row", token)
                row.done = True
                return
            row.done = row.constraint.done
        else:
            row.done = token == b.eos_id
        if len(row.tokens) >= self._max_tokens(row.req) or self._next_pos_full(row):
            row.done = True

    def _max_tokens(self, req: _Request) -> int:
        return min(req.job.max_new_tokens, self.b.max_positions - len(req.prompt_ids))

    def _next_pos_full(self, row: _Row) -> bool:
        return len(row.req.prompt_ids) + len(row.tokens) >= self.b.max_positions

    def _beam_step(self, indices: list[int], logits: torch.Tensor) -> None:
        """One beam-search step for one request's rows, reordering their caches."""
        req = self.rows[indices[0]].req
        beams = len(indices)
        logp = torch.log_softmax(logits[indices], -1)
        scores = torch.tensor([self.rows[i].score for i in indices]).unsqueeze(1) + logp
        top = torch.topk(scores.flatten(), min(2 * beams, scores.numel()))
        vocab = logits.shape[1]
        chosen: list[tuple[int, int, float]] = []  # (parent slot, token, score)
        for value, flat in zip(top.values.tolist(), top.indices.tolist(), strict=False):
            if value == float("-inf"):
                break
            parent, token = divmod(flat, vocab)
            parent_row = self.rows[indices[parent]]
            ends = token == self.b.eos_id
            if ends:
                req.beams_done.append((value / max(1, len(parent_row.tokens) + 1), parent_row.tokens + [token]))
                continue
            chosen.append((parent, token, value))
            if len(chosen) == beams:
                break
        long_enough = len(self.rows[indices[0]].tokens) + 1 >= self._max_tokens(req)
        if len(req.beams_done) >= beams or not chosen or long_enough:
            if long_enough or not req.beams_done:
                for parent, token, value in chosen:
                    pr = self.rows[indices[parent]]
                    req.beams_done.append((value / max(1, len(pr.tokens) + 1), pr.tokens + [token]))
            for i in indices:
                self.rows[i].done = True
            return
        # Rebuild the rows from their parents: tokens, automaton state, cache rows.
        parents = [self.rows[indices[p]] for p, _, _ in chosen]
        new_states = []
        for (_p, token, value), parent in zip(chosen, parents, strict=False):
            constraint = parent.constraint.fork() if parent.constraint is not None else None
            if constraint is not None:
                constraint.accept(token)
            new_states.append((parent.tokens + [token], constraint, value))
        while len(new_states) < beams:  # fewer live candidates than beams: pad with dead beams
            new_states.append((list(parents[0].tokens) + [chosen[0][1]], None, float("-inf")))
        order = list(range(len(self.rows)))
        for slot, (p, _, _) in zip(indices, chosen + [chosen[0]] * (beams - len(chosen)), strict=False):
            order[slot] = indices[p]
        self._reorder(order)
        for slot, (tokens, constraint, value) in zip(indices, new_states, strict=False):
            row = self.rows[slot]
            row.tokens, row.score = tokens, value
            if constraint is not None or row.constraint is not None:
                row.constraint = constraint if constraint is not None else row.constraint.fork()

    def _reorder(self, order: list[int]) -> None:
        if order == list(range(len(order))):
            return
        index = torch.tensor(order)
        self.cache.reorder_cache(index)
        self.mask = self.mask[index]
        self.next_pos = self.next_pos[index]

    # -- finishing rows and stepping the model -----------------------------------------------------
    def _drop_finished(self) -> None:
        keep = []
        for i, row in enumerate(self.rows):
            if row.req.cancelled.is_set():
                continue
            if row.done:
                continue
            keep.append(i)
        finished_requests = {id(r.req): r.req for r in self.rows if r.done or r.req.cancelled.is_set()}
        for req in finished_requests.values():
            if req.cancelled.is_set():
                req.resolve(asyncio.CancelledError())
                continue
            if all(r.done for r in req.rows):
                req.resolve(self._completions(req))
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not self.rows:
            self.cache = self.mask = self.next_pos = self.logits = None
            return
        index = torch.tensor(keep)
        self.cache.batch_select_indices(index)
        self.mask, self.next_pos = self.mask[index], self.next_pos[index]
        # Columns that every remaining row pads can go.
        first_real = int(self.mask.argmax(1).min())
        if first_real > 0:
            self.mask = self.mask[:, first_real:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[:, :, first_real:], layer.values[:, :, first_real:]

    def _completions(self, req: _Request) -> list[Completion]:
        b = self.b
        if req.beam:
            ranked = sorted(req.beams_done, key=lambda t: -t[0])[: req.job.n]
            sequences = [(tokens, None) for _, tokens in ranked]
        else:
            sequences = [(r.tokens, r.logprob) for r in req.rows]
        return [decode_completion(b.tokenizer, tokens, b.eos_id, logprob) for tokens, logprob in sequences]

    def _forward(self) -> None:
        last = torch.tensor([[r.tokens[-1]] for r in self.rows])
        self.mask = torch.cat([self.mask, torch.ones((len(self.rows), 1), dtype=self.mask.dtype)], 1)
        out = self.b.model(
            input_ids=last,
            attention_mask=self.mask,
            position_ids=self.next_pos.unsqueeze(1),
            past_key_values=self.cache,
            use_cache=True,
        )
        self.cache = out.past_key_values
        self.next_pos = self.next_pos + 1
        self.logits = out.logits[:, -1, :].float()


NUCLEUS_FIRST_LOOK = 1024  # tokens the top-p cut looks at first; it looks at all only when these hold too little


def sample_token(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator) -> int:
    """One token drawn from softmax(logits / temperature), cut to the top k and to the top-p nucleus
    (the smallest set of most likely tokens whose probability reaches top_p). A -inf logit (what
    the form forbids) is never drawn.

    Why not sort the whole vocabulary and call torch.multinomial: on this CPU those two took
    ~1.7 ms and ~0.9 ms per call over 6.5k tokens (a 2,000-call loop), a tenth of a decoding step. The
    nucleus is found with topk (a full sort only when 1,024 tokens hold less than top_p) and the
    draw is one uniform number looked up in the cumulative probabilities: the same distribution.
    """
    allowed = torch.isfinite(logits).nonzero().squeeze(1)
    scaled = logits[allowed] / temperature
    if top_k and top_k < len(scaled):
        keep = scaled >= torch.topk(scaled, int(top_k)).values[-1]
        allowed, scaled = allowed[keep], scaled[keep]
    probs = torch.softmax(scaled, -1)
    if top_p is not None and top_p < 1.0:
        top = torch.topk(probs, min(len(probs), NUCLEUS_FIRST_LOOK))
        if len(top.values) < len(probs) and float(top.values.sum()) <= top_p:
            top = torch.sort(probs, descending=True)
        mass_before = top.values.cumsum(0) - top.values  # the most likely token is always kept
        keep = top.indices[mass_before <= top_p]
        allowed, probs = allowed[keep], probs[keep]
    cdf = probs.cumsum(0)
    u = torch.rand(1, generator=generator) * cdf[-1]
    return int(allowed[torch.searchsorted(cdf, u, right=True).clamp(max=len(cdf) - 1)])


def _left_pad(t: torch.Tensor, width: int, dim: int = 1) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype), t], dim)


def _banned_ngram_tokens(tokens: list[int], n: int) -> set[int]:
    """Tokens that would repeat an n-gram already in the sequence (HF semantics)."""
    if n <= 0 or len(tokens) < n:
        return set()
    prefix = tuple(tokens[len(tokens) - n + 1 :]) if n > 1 else ()
    banned = set()
    for i in range(len(tokens) - n + 1):
        if tuple(tokens[i : i + n - 1]) == prefix:
            banned.add(tokens[i + n - 1])
    return banned
