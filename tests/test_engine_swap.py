"""Live model swap under load: no request lost, each poem names the model that wrote it."""

from __future__ import annotations

import asyncio

import pytest

from engine.backends.hf import HFBackend
from engine.engine import PoemEngine
from engine.model_dir import ModelDirError
from tests.helpers import assert_form
from tests.test_backends import KINDS, make_backend, request

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("backend", KINDS)
async def test_swap_under_load(backend, tiny_model_dir, tiny_model_dir_b):
    old = make_backend(backend, tiny_model_dir)
    engine = await PoemEngine.create(old)
    new = make_backend(backend, tiny_model_dir_b)
    in_flight = [asyncio.create_task(engine.write(request(seed=i))) for i in range(20)]
    await asyncio.sleep(0.2)  # the first requests are decoding when the swap begins
    swap = asyncio.create_task(engine.swap(new))
    while not swap.done():  # keep users coming while the new model loads
        in_flight.append(asyncio.create_task(engine.write(request(seed=len(in_flight)))))
        await asyncio.sleep(0.5)
    assert await swap == "tiny-b"
    in_flight += [asyncio.create_task(engine.write(request(seed=1000 + i))) for i in range(10)]

    poems = await asyncio.wait_for(asyncio.gather(*in_flight), timeout=300)  # any failure fails the test
    versions = [p.model_version for p in poems]
    assert set(versions) == {"tiny-a", "tiny-b"}
    assert versions[-10:] == ["tiny-b"] * 10  # after the swap only the new model serves
    for poem in poems:
        assert_form(poem, "5chu", 1)
    assert engine.model_version == "tiny-b"

    # start/close are idempotent: a second close of the old one and a second start of the new one do nothing
    await old.close()
    await new.start()
    assert (await engine.write(request(seed=5))).model_version == "tiny-b"
    await engine.close()
    await new.close()


async def test_a_model_whose_tokens_are_not_syllables_is_refused(tiny_model_dir, tiny_bpe_model_dir):
    """The automaton needs one token per syllable: a BPE model is refused at start and at a swap,
    and the serving model goes on serving."""
    with pytest.raises(ModelDirError, match="not a syllable-level model"):
        await PoemEngine.create(HFBackend(tiny_bpe_model_dir))
    engine = await PoemEngine.create(HFBackend(tiny_model_dir))
    try:
        with pytest.raises(ModelDirError, match="not a syllable-level model"):
            await engine.swap(HFBackend(tiny_bpe_model_dir))
        poem = await engine.write(request(seed=3))
        assert poem.model_version == "tiny-a"
        assert_form(poem, "5chu", 1)
    finally:
        await engine.close()
