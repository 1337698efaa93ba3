"""The behavioural suite every backend must pass, run against the CPU backend and vLLM.

One engine per backend kind for the whole module (starting vLLM takes most
of a minute on a CPU). The vLLM half is marked slow and still runs in CI,
on vllm-cpu; on a GPU machine the same tests run on the GPU.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from engine.backends import create_backend
from engine.backends.base import GenerationJob
from engine.engine import PoemEngine
from engine.forms import RHYME_SCHEMES, get_form
from engine.prompt import prompt_for
from engine.request import PoemRequest
from engine.settings import SamplingSettings
from engine.syllable_text import codec_for_model
from tests.helpers import assert_form

pytestmark = pytest.mark.asyncio(loop_scope="module")

# vLLM on a CPU: float32, a fixed KV cache (the default memory fraction fails
# there) and eager mode (no compilation).
VLLM_CPU_OPTIONS = dict(dtype="float32", kv_cache_memory_bytes=256 << 20, max_num_seqs=128, enforce_eager=True)

KINDS = ["hf", pytest.param("vllm", marks=pytest.mark.slow)]

OPENINGS = {  # form -> an opening that fills its first line
    "5chu": "Mùa thu lá vàng rơi",
    "lucbat": "Trăm năm trong cõi người ta",
    "7chu": "Chiều nay em đứng bên dòng sông",
    "8chu": "Chiều nay em đứng bên dòng sông vắng",
    "tudo": "Mùa thu",
}


def make_backend(kind: str, model_dir):
    """A backend of the given kind with the options that suit this machine."""
    if kind == "vllm":
        pytest.importorskip("vllm")
        return create_backend("vllm", model_dir, **VLLM_CPU_OPTIONS)
    return create_backend(kind, model_dir)


def request(opening: str = OPENINGS["5chu"], form: str | None = None, stanzas: int = 1, **settings) -> PoemRequest:
    return PoemRequest(opening, form=form, stanzas=stanzas, settings=SamplingSettings(**settings))


@pytest.fixture(scope="module", params=KINDS)
def kind(request):
    return request.param


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(kind, tiny_model_dir):
    engine = await PoemEngine.create(make_backend(kind, tiny_model_dir))
    yield engine
    await engine.close()


@pytest.mark.parametrize("form_id", list(OPENINGS))
async def test_forms_obeyed(engine, form_id):
    poems = await asyncio.gather(
        *(engine.write(request(OPENINGS[form_id], form_id, stanzas, seed=stanzas)) for stanzas in (1, 2))
    )
    for stanzas, poem in zip((1, 2), poems, strict=False):
        assert_form(poem, form_id, stanzas)
        assert poem.lines[0] == OPENINGS[form_id]


# Openings that obey their form's tone rule, so a whole poem can score 1.0.
RULE_ABIDING = {
    "5chu": "Mùa thu lá rụng rơi",
    "7chu": "Chiều nay em đứng bên dòng sông",
    "8chu": "Em không nghe mùa thu dưới trăng mờ",
    "lucbat": "Trăm năm trong cõi người ta",
}


async def check_one_candidate_is_perfect(engine) -> None:
    """One candidate, every form and rhyme scheme: length, tone and rhyme all 1.0 (the automaton's proof)."""
    cases = [
        (form, scheme, stanzas)
        for form in RULE_ABIDING
        for scheme in (RHYME_SCHEMES if get_form(form).schemes else [None])
        for stanzas in (1, 2)
    ]
    poems = await asyncio.gather(
        *(
            engine.write(
                PoemRequest(
                    RULE_ABIDING[form],
                    form=form,
                    stanzas=stanzas,
                    scheme=scheme,
                    settings=SamplingSettings(seed=i, candidates=1),
                )
            )
            for i, (form, scheme, stanzas) in enumerate(cases)
        )
    )
    for (form, scheme, stanzas), poem in zip(cases, poems, strict=False):
        assert_form(poem, form, stanzas)
        assert (poem.scores.tone, poem.scores.rhyme) == (1.0, 1.0), (form, scheme, poem.lines, poem.scores.violations)


async def test_one_candidate_is_perfect_in_every_scheme(engine):
    await check_one_candidate_is_perfect(engine)


async def test_partial_opening_is_completed(engine):
    poem = await engine.write(request("Mùa thu", "5chu", seed=3))
    assert_form(poem, "5chu", 1)
    assert poem.lines[0].startswith("Mùa thu ")


async def test_greedy_is_deterministic(engine):
    a = await engine.write(request(strategy="greedy"))
    b = await engine.write(request(strategy="greedy"))
    assert a.lines == b.lines
    assert a.candidates == 1


async def test_same_seed_same_poem_and_seeds_differ(engine):
    a, b = await asyncio.gather(engine.write(request(seed=42)), engine.write(request(seed=42)))
    assert a.lines == b.lines and a.seed == 42
    others = await asyncio.gather(*(engine.write(request(seed=s)) for s in (1, 2, 3, 4)))
    assert len({p.lines for p in others}) >= 3  # different seeds, different poems (mostly)


async def test_top_k_one_is_greedy(engine):
    greedy = await engine.write(request(strategy="greedy", repetition_penalty=1.0))
    top1 = await engine.write(request(strategy="sample", top_k=1, candidates=1, seed=7, repetition_penalty=1.0))
    assert top1.lines == greedy.lines


async def test_temperature_and_top_p_are_honoured(engine):
    base = dict(seed=11, candidates=1, top_k=0)
    cold, hot = await asyncio.gather(
        engine.write(request(temperature=0.3, top_p=1.0, **base)),
        engine.write(request(temperature=1.8, top_p=1.0, **base)),
    )
    assert cold.lines != hot.lines
    assert cold.settings.temperature == 0.3
    narrow = await engine.write(request(temperature=1.0, top_p=0.05, **base))
    wide = await engine.write(request(temperature=1.0, top_p=1.0, **base))
    assert narrow.lines != wide.lines


async def test_repetition_penalty_changes_output(engine):
    plain = await engine.write(request(strategy="greedy", repetition_penalty=1.0))
    penalised = await engine.write(request(strategy="greedy", repetition_penalty=2.0))
    assert plain.lines != penalised.lines


async def test_beam_search(engine):
    a = await engine.write(request(strategy="beam", num_beams=2, candidates=2))
    b = await engine.write(request(strategy="beam", num_beams=2, candidates=2))
    assert_form(a, "5chu", 1)
    assert a.lines == b.lines


async def test_stream_joins_to_the_completion(engine):
    settings = SamplingSettings(seed=5).resolve(engine.backend.info.defaults)
    opening = codec_for_model(engine.backend.info.path).to_model("Mùa thu lá vàng rơi")  # the model's spelling
    job = GenerationJob(prompt_for("5chu", opening, True), settings, 1, 60)
    pieces = [piece async for piece in engine.backend.stream(job)]
    (whole,) = await engine.backend.complete(job)
    assert "".join(pieces) == whole.text
    assert pieces


async def test_cancelled_request_frees_the_backend(engine):
    # Long enough to be still decoding when cancelled, however fast the machine: 16 candidates x 16 lines.
    task = asyncio.create_task(engine.write(request(OPENINGS["8chu"], "8chu", stanzas=4, seed=9, candidates=16)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    poem = await asyncio.wait_for(engine.write(request(seed=10)), timeout=60)
    assert_form(poem, "5chu", 1)
    vllm_engine = getattr(engine.backend, "_engine", None)
    if vllm_engine is not None:  # vLLM: the aborted request left the scheduler
        for _ in range(50):
            if vllm_engine.get_num_unfinished_requests() == 0:
                break
            await asyncio.sleep(0.1)
        assert vllm_engine.get_num_unfinished_requests() == 0


async def test_32_concurrent_requests(engine):
    forms = list(OPENINGS)
    reqs = [request(OPENINGS[forms[i % len(forms)]], forms[i % len(forms)], seed=100 + i) for i in range(32)]
    poems = await asyncio.wait_for(asyncio.gather(*(engine.write(r) for r in reqs)), timeout=300)
    for r, poem in zip(reqs, poems, strict=False):
        assert_form(poem, r.form, 1)
        assert poem.model_version == "tiny-a"
