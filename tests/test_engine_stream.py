"""Streaming: the engine tells its caller each finished line while the poem is decoded.

What a chat user sees grow line by line must end as exactly the poem the bot
stores: the same lines as the same request written without streaming.
"""

from __future__ import annotations

import pytest
import pytest_asyncio

from engine.backends import create_backend
from engine.engine import PoemEngine
from engine.request import PoemRequest
from engine.settings import SamplingSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")

VLLM_CPU_OPTIONS = dict(dtype="float32", kv_cache_memory_bytes=128 << 20, max_num_seqs=16, enforce_eager=True)


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["hf", pytest.param("vllm", marks=pytest.mark.slow)]
)
async def engine(request, tiny_model_dir):
    if request.param == "vllm":
        pytest.importorskip("vllm")
        backend = create_backend("vllm", tiny_model_dir, **VLLM_CPU_OPTIONS)
    else:
        backend = create_backend("hf", tiny_model_dir)
    engine = await PoemEngine.create(backend)
    yield engine
    await engine.close()


def poem_request(opening: str, stanzas: int = 1, **settings) -> PoemRequest:
    return PoemRequest(opening, stanzas=stanzas, settings=SamplingSettings(seed=11, candidates=1, **settings))


@pytest.mark.parametrize("opening", ["Mùa thu lá vàng rơi", "Mùa thu lá"], ids=["whole-line", "part-line"])
async def test_lines_arrive_one_by_one_and_end_as_the_poem(engine, opening):
    seen: list[tuple[str, ...]] = []
    poem = await engine.write(poem_request(opening, stanzas=2), on_lines=seen.append)
    plain = await engine.write(poem_request(opening, stanzas=2))
    assert poem.lines == plain.lines  # streaming changes nothing about the poem
    # One call per finished line, each a prefix of the poem; the last line comes with the poem itself.
    assert [len(lines) for lines in seen] == list(range(1, len(poem.lines)))
    for lines in seen:
        assert lines == poem.lines[: len(lines)]
    assert seen[0][0].startswith(opening)


async def test_a_whole_opening_line_is_shown_before_the_model_writes(engine):
    seen: list[tuple[str, ...]] = []
    await engine.write(poem_request("Mùa thu lá vàng rơi"), on_lines=seen.append)
    assert seen[0] == ("Mùa thu lá vàng rơi",)


async def test_best_of_n_is_not_streamed(engine):
    seen: list[tuple[str, ...]] = []
    request = PoemRequest("Mùa thu lá vàng rơi", settings=SamplingSettings(seed=3, candidates=3))
    poem = await engine.write(request, on_lines=seen.append)
    assert seen == [] and len(poem.lines) == 4
