"""The one interface every backend implements.

The engine does everything that is the same for all backends (checking the
request, compiling the form, choosing the best candidate by the checker); a
backend only turns a prompt plus its form (the automaton's spec) into n
continuations.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from engine.automaton import FormSpec
from engine.model_dir import ModelInfo
from engine.prompt import END_OF_POEM
from engine.settings import SamplingSettings


@dataclass(frozen=True)
class GenerationJob:
    prompt: str
    settings: SamplingSettings  # resolved: no None left, seed included
    n: int  # candidates to return (beam search: the best n beams)
    max_new_tokens: int
    form: FormSpec | None = None  # the whole form as an automaton; None: free decoding (evaluation only)


@dataclass(frozen=True)
class Completion:
    text: str  # the continuation only, without the prompt or the end token
    tokens: int
    finished: bool  # ended with the end token (False: stopped by max_new_tokens or cancelled)
    logprob: float | None = None  # sum of the model's log-probabilities of the tokens, when the backend knows it


def decode_completion(tokenizer, tokens: Sequence[int], eos_id: int, logprob: float | None = None) -> Completion:
    """Token ids -> Completion: the one tokens-to-text function of every backend (the end token dropped)."""
    tokens = list(tokens)
    finished = bool(tokens) and tokens[-1] == eos_id
    body = tokens[:-1] if finished else tokens
    text = tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    return Completion(text=text.replace(END_OF_POEM, ""), tokens=len(tokens), finished=finished, logprob=logprob)


def candidates(job: GenerationJob) -> int:
    """How many candidates a job decodes: greedy decoding gives the same one every time."""
    return 1 if job.settings.strategy == "greedy" else job.n


class StreamDecoder:
    """Token ids in, new text out; the pieces join to exactly `decode_completion(tokens).text`.

    Decoding the whole text each time (poems are ~100 tokens) and holding back a
    trailing U+FFFD keeps a multi-byte letter split over two byte-level tokens whole.
    """

    def __init__(self, tokenizer, eos_id: int):
        self.tokenizer = tokenizer
        self.eos_id = eos_id
        self.tokens: list[int] = []
        self.sent = ""

    def feed(self, token_ids: Sequence[int]) -> str:
        self.tokens += list(token_ids)
        text = self._text()
        return "" if text.endswith("\ufffd") else self._new(text)

    def flush(self) -> str:
        return self._new(self._text())

    def _text(self) -> str:
        return decode_completion(self.tokenizer, self.tokens, self.eos_id).text

    def _new(self, text: str) -> str:
        piece = text[len(self.sent) :] if text.startswith(self.sent) else ""
        self.sent = text if text.startswith(self.sent) else self.sent
        return piece


class Backend(abc.ABC):
    """Async text generation from a local model directory."""

    info: ModelInfo

    @property
    def model_version(self) -> str:
        return self.info.version

    async def start(self) -> None:  # noqa: B027 - an optional hook: backends without set-up keep it
        """Load the model; called once before the first job."""

    @abc.abstractmethod
    async def complete(self, job: GenerationJob) -> list[Completion]:
        """Decode one job; cancelling the awaiting task stops its decoding."""

    async def stream(self, job: GenerationJob) -> AsyncIterator[str]:
        """Yield the text of one candidate piece by piece, as it is decoded.

        Joined, the pieces equal `complete(job)[0].text`. Only a job of one
        sampled or greedy candidate streams token by token (`_stream_tokens`);
        best-of-n and beam search must wait for every candidate, so they come
        in one piece.
        """
        if job.n == 1 and job.settings.strategy != "beam":
            async for piece in self._stream_tokens(job):
                yield piece
            return
        completions = await self.complete(job)
        if completions and completions[0].text:
            yield completions[0].text

    async def _stream_tokens(self, job: GenerationJob) -> AsyncIterator[str]:
        """One candidate's text as it is decoded; backends that decode token by token override this."""
        completions = await self.complete(job)
        if completions and completions[0].text:
            yield completions[0].text

    async def close(self) -> None:  # noqa: B027 - an optional hook, like start()
        """Release the model; in-flight jobs have finished when this is called."""
