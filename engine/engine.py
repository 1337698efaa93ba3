"""PoemEngine: PoemRequest -> Poem, on any backend, with live model swap.

The engine checks the request and decodes each candidate in one request to
the backend, the whole form enforced by the automaton (engine/automaton.py) as
the model writes, one token per syllable. Only syllable-level models are
served: a model directory whose tokenizer is not one token per syllable is
refused when it is loaded (a byte-level BPE cannot be held to a syllable count
in one pass). It decodes `candidates` poems and keeps the one the form checker scores
highest, and among equals the one the model itself finds likeliest (mean
token log-probability). Swapping the model starts the new backend first, sends new requests to
it, lets requests already running on the old one finish, then closes the old
one: no request is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.automaton import FormAutomaton, FormSpec
from engine.backends.base import Backend, GenerationJob
from engine.forms import check, get_form
from engine.model_dir import ModelInfo, require_syllable_level
from engine.prompt import LINE_SEPARATOR, prompt_for, split_lines
from engine.request import Poem, PoemRequest
from engine.settings import SamplingSettings
from engine.syllable_text import codec_for_model, join_continuation

log = logging.getLogger(__name__)

LinesCallback = Callable[[tuple[str, ...]], None]  # streaming: the poem's finished lines so far


def model_prompt(info: ModelInfo, request: PoemRequest) -> tuple[str, bool]:
    """The prompt a model reads for a request, and whether the opening fills the first line.

    The model reads its own spelling of the opening (engine/syllable_text.py).
    """
    whole = get_form(request.form_id).is_whole_line(request.opening)
    return prompt_for(request.form_id, codec_for_model(info.path).to_model(request.opening), whole), whole


@dataclass
class _Candidate:
    """One decoded poem: its text and the model's log-probability of its tokens."""

    text: str
    tokens: int = 0
    logprob: float = 0.0

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, self.tokens)


class _Slot:
    """A backend plus the count of requests running on it."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def enter(self) -> None:
        self.in_flight += 1
        self.idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()


class PoemEngine:
    def __init__(self, backend: Backend, constrained: bool = True):
        self._slot = _Slot(backend)
        self._swap_lock = asyncio.Lock()
        self.constrained = constrained  # False only for evaluation without the constraint

    @classmethod
    async def create(cls, backend: Backend, **kwargs) -> PoemEngine:
        require_syllable_level(backend.info)
        await backend.start()
        return cls(backend, **kwargs)

    @property
    def backend(self) -> Backend:
        return self._slot.backend

    @property
    def model_version(self) -> str:
        return self._slot.backend.model_version

    async def write(self, request: PoemRequest, on_lines: LinesCallback | None = None) -> Poem:
        """Write one poem; cancelling the caller cancels its decoding.

        `on_lines` (streaming) is called with the poem's finished lines each time
        one more is finished, the opening's first; only for a poem decoded as
        one candidate (best-of-n must wait for every candidate). It must not block: adapters
        hand the lines to their own task.
        """
        started = time.perf_counter()
        slot = self._slot
        slot.enter()
        try:
            backend = slot.backend
            settings = request.settings.resolve(backend.info.defaults)
            n = 1 if settings.strategy == "greedy" else settings.candidates
            t0 = time.perf_counter()
            prompt, candidates = await self._decode(backend, request, settings, n, on_lines)
            t1 = time.perf_counter()
        finally:
            slot.leave()
        best_lines, best_scores = self._best(request, candidates)
        return Poem(
            opening=request.opening,
            form=request.form_id,
            stanzas=request.stanzas,
            lines=tuple(best_lines),
            scores=best_scores,
            settings=settings,
            model_version=backend.model_version,
            prompt=prompt,
            timings={
                "prepare_ms": (t0 - started) * 1000,
                "generate_ms": (t1 - t0) * 1000,
                "total_ms": (time.perf_counter() - started) * 1000,
            },
            candidates=len(candidates),
        )

    async def _decode(
        self,
        backend: Backend,
        request: PoemRequest,
        settings: SamplingSettings,
        n: int,
        on_lines: LinesCallback | None = None,
    ) -> tuple[str, list[_Candidate]]:
        """Decode n candidate poems in one request: the automaton enforces the whole form as they are written.

        The model sees the user's opening in its own spelling (an unknown word as
        the unknown token); the poem starts with the user's exact text.
        """
        prompt, whole = model_prompt(backend.info, request)
        codec = codec_for_model(backend.info.path)
        spec = FormSpec(request.form_id, request.stanzas, request.opening, whole, request.scheme)
        max_tokens = FormAutomaton(spec).max_tokens() if self.constrained else 2 * FormAutomaton(spec).max_tokens()
        job = GenerationJob(prompt, settings, n, max_tokens, form=spec if self.constrained else None)
        if on_lines is not None and n == 1 and settings.strategy != "beam":
            return prompt, [await self._stream_one(backend, job, request, whole, on_lines)]
        out = []
        for completion in await backend.complete(job):
            text = join_continuation(
                request.opening, codec.from_model(completion.text, continues_line=not whole), whole
            )
            out.append(_Candidate(text, completion.tokens, completion.logprob or 0.0))
        return prompt, out

    @staticmethod
    async def _stream_one(
        backend: Backend, job: GenerationJob, request: PoemRequest, whole: bool, on_lines: LinesCallback
    ) -> _Candidate:
        """Decode one candidate through `backend.stream`, telling `on_lines` each finished line."""
        codec = codec_for_model(backend.info.path)

        def finished_lines(model_text: str) -> list[str]:
            cut = model_text.rfind(LINE_SEPARATOR)
            if cut < 0:
                return [request.opening] if whole else []
            text = codec.from_model(model_text[:cut], continues_line=not whole)
            return split_lines(join_continuation(request.opening, text, whole))

        model_text, shown = "", 0
        lines = finished_lines(model_text)
        if lines:
            on_lines(tuple(lines))
            shown = len(lines)
        async for piece in backend.stream(job):
            model_text += piece
            if LINE_SEPARATOR in piece and len(lines := finished_lines(model_text)) > shown:
                on_lines(tuple(lines))
                shown = len(lines)
        # The last line has no line break after it: the caller shows the whole poem.
        text = codec.from_model(model_text, continues_line=not whole)
        return _Candidate(join_continuation(request.opening, text, whole))

    @staticmethod
    def _best(request: PoemRequest, candidates: list[_Candidate]):
        """The candidate the checker scores highest; among equals the one the model finds likeliest."""
        best = None
        for c in candidates:
            lines = split_lines(c.text)
            scores = check(lines, request.form_id, request.stanzas, request.scheme)
            key = (scores.total, c.mean_logprob)
            if best is None or key > best[0]:
                best = (key, lines, scores)
        if best is None:
            raise RuntimeError("the backend returned no candidate")
        return best[1], best[2]

    async def swap(self, new_backend: Backend) -> str:
        """Serve new requests from a new backend; close the old one once idle."""
        require_syllable_level(new_backend.info)
        async with self._swap_lock:
            await new_backend.start()
            old = self._slot
            self._slot = _Slot(new_backend)
            log.info(
                "serving model %s (was %s); %d requests still on the old one",
                new_backend.model_version,
                old.backend.model_version,
                old.in_flight,
            )
            await old.idle.wait()
            await old.backend.close()
            return new_backend.model_version

    async def close(self) -> None:
        await self._slot.idle.wait()
        await self._slot.backend.close()
