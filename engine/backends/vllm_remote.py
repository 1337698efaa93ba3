"""Remote backend: one or more `vllm serve` replicas over their OpenAI-compatible API.

Each job is one POST /v1/completions. Requests go round-robin over the
replicas; a replica that refuses the connection, times out or answers 5xx is
skipped for RETRY_AFTER_SECONDS and the request goes on to the next one (a
job is a pure function of its prompt, settings and seed, so resending it is
safe). When every replica is down the request fails with ReplicasDown.

The request carries the same parameters as the in-process backend, through
vLLM's extra request fields: `vllm_xargs: {"tho_form": ...}`, read by the
form automaton's logits processor that the server must load (`vllm serve DIR
--logits-processors engine.backends.vllm_form:FormLogitsProcessor`, this
project installed beside vLLM); `top_k`, `repetition_penalty`, `seed` (one request per candidate, seeded with
`derive_seed(seed, k)` as in process), `logprobs: 0`,
`stop_token_ids`, `skip_special_tokens: false`, and `return_token_ids: true` so
the answer is decoded here with the model directory's own tokenizer. The
prompt goes as token ids. Beam search runs here step by step, as in
vllm_local.beam_search; it needs the servers started with `--max-logprobs -1`.

The bot keeps a local copy of the served model directory (the same version):
it reads the version, the sampling defaults and the tokenizer from it.

Deployment: one `vllm serve models/<version> --port 800N` per GPU, then
`THO_BACKEND=remote THO_REMOTE_URLS=http://gpu1:8000,http://gpu2:8000` for the bot
(see the README, "vLLM serving").
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from engine.backends.base import Backend, Completion, GenerationJob, candidates
from engine.backends.vllm_local import TokenizerSupport, beam_search
from engine.model_dir import read_model_info
from engine.prompt import END_OF_POEM
from engine.settings import derive_seed

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 10.0  # a failed replica gets no requests for this long
REQUEST_TIMEOUT_SECONDS = 300.0
MAX_CONNECTIONS = 1024  # per bot process, over all replicas


class ReplicasDown(RuntimeError):
    """No replica answered."""


class ReplicaError(RuntimeError):
    """A replica answered 4xx: the request itself is wrong; another replica would say the same."""


class _Replica:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.down_until = 0.0

    @property
    def up(self) -> bool:
        return time.monotonic() >= self.down_until


class RemoteBackend(Backend):
    """`vllm serve` replicas of one model version, used as one backend."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        urls: Sequence[str] | str,
        api_key: str | None = None,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        retry_after: float = RETRY_AFTER_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ):
        self.info = read_model_info(model_dir)
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not urls:
            raise ValueError("the remote backend needs at least one replica URL")
        self.replicas = [_Replica(u) for u in urls]
        self.retry_after = retry_after
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._max_connections = max_connections
        self._client: httpx.AsyncClient | None = None
        self._next = 0

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._client is not None:
            return
        self._support = await asyncio.to_thread(self._load_tokenizer)
        limits = httpx.Limits(max_connections=self._max_connections, max_keepalive_connections=self._max_connections)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout, connect=5.0), limits=limits, headers=self._headers
        )

    def _load_tokenizer(self) -> TokenizerSupport:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.info.path, local_files_only=True)
        config = json.loads((self.info.path / "config.json").read_text(encoding="utf-8"))
        self.max_model_len = int(config.get("n_positions") or config.get("max_position_embeddings") or 1024)
        return TokenizerSupport(tokenizer, int(config["vocab_size"]), tokenizer.convert_tokens_to_ids(END_OF_POEM))

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- jobs ------------------------------------------------------------------------------------
    async def complete(self, job: GenerationJob) -> list[Completion]:
        await self._ensure_started()
        prompt_ids = self._prompt_ids(job.prompt)
        if job.settings.strategy == "beam":
            max_tokens = max(1, min(job.max_new_tokens, self.max_model_len - len(prompt_ids)))
            return await beam_search(job, prompt_ids, self._support, self._score_next, max_tokens)

        # One request per candidate (spread over the replicas), seeded as in process.
        async def one(k: int) -> Completion:
            choice = (await self._post(self.request_body(job, prompt_ids, candidate=k)))["choices"][0]
            logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or []
            return self._support.completion(choice["token_ids"], sum(lp for lp in logprobs if lp is not None))

        return list(await asyncio.gather(*(one(k) for k in range(candidates(job)))))

    async def _stream_tokens(self, job: GenerationJob) -> AsyncIterator[str]:
        """Yield the text as the replica streams it (server-sent events; n=1 jobs)."""
        await self._ensure_started()
        body = self.request_body(job, self._prompt_ids(job.prompt)) | {"stream": True}
        # A replica that fails before its answer begins is skipped like any other; once the stream has
        # begun it is not resent elsewhere: the user has seen its start.
        response = await self._send(body, stream=True)
        try:
            decoder = self._support.stream_decoder()
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:]).get("choices", []):
                    if piece := decoder.feed(choice.get("token_ids") or []):
                        yield piece
            if piece := decoder.flush():
                yield piece
        finally:
            await response.aclose()

    def request_body(self, job: GenerationJob, prompt_ids: list[int], candidate: int = 0) -> dict[str, Any]:
        """One candidate of the job as an OpenAI completions request with vLLM's extra fields."""
        s = job.settings
        body: dict[str, Any] = {
            "prompt": prompt_ids,
            "max_tokens": max(1, min(job.max_new_tokens, self.max_model_len - len(prompt_ids))),
            "repetition_penalty": float(s.repetition_penalty or 1.0),
            "stop_token_ids": [self._support.eos_id],
            "skip_special_tokens": False,
            "spaces_between_special_tokens": False,
            "return_token_ids": True,
            "request_id": f"tho-{uuid.uuid4().hex}",
            "logprobs": 0,
        }
        if job.form is not None:  # the server runs engine.backends.vllm_form.FormLogitsProcessor
            body["vllm_xargs"] = job.form.extra_args()
        if s.strategy == "greedy":
            return body | {"n": 1, "temperature": 0.0}
        return body | {
            "n": 1,
            "temperature": float(s.temperature),
            "top_k": int(s.top_k or 0),
            "top_p": float(s.top_p if s.top_p is not None else 1.0),
            "seed": derive_seed(int(s.seed), candidate),
        }

    async def _score_next(self, prefixes: list[list[int]]) -> list[dict[int, float]]:
        """Next-token log-probabilities over the whole vocabulary after each prefix."""

        async def one(prefix: list[int]) -> dict[int, float]:
            answer = await self._post(
                {
                    "prompt": prefix,
                    "max_tokens": 1,
                    "temperature": 0.0,
                    "logprobs": -1,
                    "return_tokens_as_token_ids": True,
                }
            )
            top = answer["choices"][0]["logprobs"]["top_logprobs"][0]
            return {int(key.rsplit(":", 1)[1]): float(lp) for key, lp in top.items()}

        return list(await asyncio.gather(*(one(p) for p in prefixes)))

    # -- replicas --------------------------------------------------------------------------------
    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        return (await self._send(body, stream=False)).json()

    async def _send(self, body: dict[str, Any], *, stream: bool) -> httpx.Response:
        """POST /v1/completions to the next live replica; one that cannot be reached or answers 5xx is
        marked down and the next one tried. With `stream`, only the headers have been read: the caller
        reads the body and closes the response."""
        errors = []
        for _ in range(len(self.replicas)):
            replica = self._pick()
            request = self._client.build_request("POST", replica.url + "/v1/completions", json=body)
            try:
                response = await self._client.send(request, stream=stream)
            except httpx.TransportError as exc:  # refused, reset, timed out (TimeoutException is one)
                self._mark_down(replica, repr(exc))
                errors.append(f"{replica.url}: {exc!r}")
                continue
            if response.status_code >= 500:
                await response.aclose()
                self._mark_down(replica, f"HTTP {response.status_code}")
                errors.append(f"{replica.url}: HTTP {response.status_code}")
                continue
            if response.status_code >= 400:
                await response.aread()  # the refusal's text, for the error
                await response.aclose()
                refusal = f"HTTP {response.status_code} {response.text[:500]}"
                raise ReplicaError(f"{replica.url} refused the request: {refusal}")
            return response
        raise ReplicasDown("no vLLM replica answered: " + "; ".join(errors))

    def _pick(self) -> _Replica:
        """Round-robin over live replicas; if none is live, the one that failed longest ago."""
        n = len(self.replicas)
        for i in range(n):
            replica = self.replicas[(self._next + i) % n]
            if replica.up:
                self._next = (self._next + i + 1) % n
                return replica
        return min(self.replicas, key=lambda r: r.down_until)

    def _mark_down(self, replica: _Replica, why: str) -> None:
        if replica.up:
            log.warning("vLLM replica %s failed (%s); skipping it for %.0f s", replica.url, why, self.retry_after)
        replica.down_until = time.monotonic() + self.retry_after

    # -- helpers ---------------------------------------------------------------------------------
    async def _ensure_started(self) -> None:
        if self._client is None:
            await self.start()

    def _prompt_ids(self, prompt: str) -> list[int]:
        ids = self._support.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        return ids[-(self.max_model_len - 1) :]
