"""Live model swap under load: no request lost, each poem names the model that wrote it."""

from __future__ import annotations

import asyncio

import pytest

from engine.engine import PoemEngine
from tests.helpers import assert_form
from tests.test_backends import KINDS, make_backend, request

pytestmark = pytest.mark.asyncio


# The swap is the backend's business, not the tokenizer's: one run per backend, on syllable models.
SWAP_KINDS = [k for k in KINDS if (k.values[0] if hasattr(k, "values") else k)[1] == "syllable"]


@pytest.mark.parametrize("kind", SWAP_KINDS, ids=lambda k: "-".join(k))
async def test_swap_under_load(kind, tiny_model_dir, tiny_model_dir_b):
    backend, _ = kind
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
