"""Every poem the engine writes under the constraint has its form's exact shape.

A tiny random GPT-2 writes nonsense, which is the point: whatever the model
prefers, the constraint alone must give the right number of lines and of
syllables per line, the fixed tone classes, and the rhymes.
"""

import asyncio

import pytest
import pytest_asyncio

from engine.backends.hf import HFBackend
from engine.engine import PoemEngine
from engine.forms import RHYME_SCHEMES, get_form
from engine.prosody import rhymes, syllables
from engine.request import PoemRequest
from engine.settings import SamplingSettings
from engine.syllable_text import codec_for_model, pieces
from tests.helpers import assert_form

OPENINGS = {
    "5chu": ["Mùa thu", "Em về qua phố cũ", "Gió"],
    "7chu": ["Chiều nay em đứng bên dòng sông", "Quê hương"],
    "8chu": ["Em đi qua những con đường ngày cũ", "Hà Nội"],
    "lucbat": ["Trăm năm trong cõi người ta", "Bên kia sông"],
    "tudo": ["Hà Nội mùa thu", "Tôi"],
}
SETTINGS = [
    SamplingSettings(temperature=0.7, candidates=1),
    SamplingSettings(temperature=1.5, top_k=0, top_p=1.0, candidates=2),
    SamplingSettings(temperature=1.0, top_k=5, repetition_penalty=1.5, no_repeat_ngram_size=2, candidates=1),
    SamplingSettings(strategy="greedy"),
    SamplingSettings(strategy="beam", num_beams=3, candidates=2),
]


@pytest_asyncio.fixture
async def open_engine():
    """`await open_engine(model_dir, **options)`: a PoemEngine on the CPU backend, closed after the test."""
    engines = []

    async def open_(model_dir, **options) -> PoemEngine:
        engines.append(await PoemEngine.create(HFBackend(model_dir), **options))
        return engines[-1]

    yield open_
    for engine in engines:
        await engine.close()


async def test_every_form_every_setting_has_exact_shape(open_engine, tiny_model_dir):
    engine = await open_engine(tiny_model_dir)
    # Every form with every setting, and every opening (partial lines too) once.
    cases = [
        (form, openings[0], settings.replace(seed=7)) for form, openings in OPENINGS.items() for settings in SETTINGS
    ]
    cases += [
        (form, opening, SETTINGS[0].replace(seed=8)) for form, openings in OPENINGS.items() for opening in openings[1:]
    ]
    poems = await asyncio.gather(*(engine.write(PoemRequest(o, form=f, settings=s)) for f, o, s in cases))
    for (form, opening, _), poem in zip(cases, poems, strict=False):
        assert poem.form == form
        assert poem.lines[0].startswith(opening)
        assert_form(poem, form, 1)


@pytest.mark.parametrize("form", ["5chu", "lucbat", "7chu"])
async def test_tones_and_rhymes_are_enforced(open_engine, tiny_model_dir, form):
    """Where the user's own words leave the tone free, the whole poem obeys the form."""
    engine = await open_engine(tiny_model_dir)
    opening = {"5chu": "Đêm", "lucbat": "Trăm năm trong cõi người ta", "7chu": "Chiều"}[form]
    poems = await asyncio.gather(
        *(
            engine.write(PoemRequest(opening, form=form, stanzas=2, settings=SamplingSettings(seed=s, candidates=1)))
            for s in range(6)
        )
    )
    for poem in poems:
        assert_form(poem, form, 2)
        assert poem.scores.tone == 1.0, (poem.lines, poem.scores.violations)
        assert poem.scores.rhyme == 1.0, (poem.lines, poem.scores.violations)


async def test_four_stanzas_of_luc_bat_chain_their_rhymes(open_engine, tiny_model_dir):
    engine = await open_engine(tiny_model_dir)
    poem = await engine.write(
        PoemRequest("Trăm năm trong cõi người ta", stanzas=4, settings=SamplingSettings(seed=3, candidates=1))
    )
    assert poem.form == "lucbat"
    assert_form(poem, "lucbat", 4)
    sylls = [syllables(line) for line in poem.lines]
    for i in range(0, len(sylls) - 1, 2):
        assert rhymes(sylls[i][5], sylls[i + 1][5])  # six-line's 6th with eight-line's 6th
        if i + 2 < len(sylls):
            assert rhymes(sylls[i + 1][7], sylls[i + 2][5])  # eight-line's 8th with the next 6th


async def test_same_seed_same_poem_and_new_seed_new_poem(open_engine, tiny_model_dir):
    engine = await open_engine(tiny_model_dir)

    def req(seed):
        return PoemRequest("Mùa thu lá vàng rơi", settings=SamplingSettings(seed=seed))

    a, b, c = await engine.write(req(42)), await engine.write(req(42)), await engine.write(req(43))
    assert a.lines == b.lines and a.seed == 42
    assert a.lines != c.lines


async def test_unconstrained_mode_decodes_freely(open_engine, tiny_model_dir):
    """Without the constraint a random model does not keep the form: the constraint is what does."""
    engine = await open_engine(tiny_model_dir, constrained=False)
    poems = await asyncio.gather(
        *(
            engine.write(PoemRequest("Mùa thu lá vàng rơi", settings=SamplingSettings(seed=s, candidates=1)))
            for s in range(4)
        )
    )
    assert any(p.scores.length < 1.0 for p in poems)


async def test_cancelled_request_stops_and_others_go_on(open_engine, tiny_model_dir):
    engine = await open_engine(tiny_model_dir)
    slow = asyncio.create_task(
        engine.write(PoemRequest("Trăm năm trong cõi người ta", stanzas=4, settings=SamplingSettings(candidates=16)))
    )
    await asyncio.sleep(0.05)  # still decoding, however fast the machine
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    poem = await asyncio.wait_for(engine.write(PoemRequest("Mùa thu lá vàng rơi")), 60)
    assert len(poem.lines) == 4


async def test_swap_keeps_every_request(open_engine, tiny_model_dir, tiny_model_dir_b):
    engine = await open_engine(tiny_model_dir)
    first = [
        asyncio.create_task(engine.write(PoemRequest("Mùa thu lá vàng rơi", settings=SamplingSettings(seed=s))))
        for s in range(6)
    ]
    await asyncio.sleep(0.05)
    version = await engine.swap(HFBackend(tiny_model_dir_b))
    later = await engine.write(PoemRequest("Mùa thu lá vàng rơi"))
    done = await asyncio.gather(*first)
    assert version == "tiny-b" and later.model_version == "tiny-b"
    assert all(len(p.lines) == 4 for p in done)
    assert {p.model_version for p in done} <= {"tiny-a", "tiny-b"}


# Openings that obey their form's tone rule, so a whole poem can score 1.0.
RULE_ABIDING = {
    "5chu": "Mùa thu lá rụng rơi",  # 2nd and 4th opposite
    "7chu": "Chiều nay em đứng bên dòng sông",  # luật bằng: B T B, ends bằng
    "8chu": "Em không nghe mùa thu dưới trăng mờ",  # 3rd, 6th, 8th: B T B
    "lucbat": "Trăm năm trong cõi người ta",
}


ONE_WORD = {"5chu": "Mùa", "7chu": "Chiều", "8chu": "Đêm", "lucbat": "Trăm"}  # the model writes the rest


@pytest.mark.parametrize("form", list(RULE_ABIDING))
async def test_one_candidate_is_perfect_in_every_scheme(open_engine, tiny_model_dir, form):
    """The automaton, not best-of-n, keeps the form: one candidate scores 1.0 on length, tone and rhyme."""
    engine = await open_engine(tiny_model_dir)
    schemes = list(RHYME_SCHEMES) if get_form(form).schemes else [None]
    cases = [
        (scheme, opening, stanzas)
        for scheme in schemes
        for opening in (RULE_ABIDING[form], ONE_WORD[form])
        for stanzas in (1, 2)
    ]
    poems = await asyncio.gather(
        *(
            engine.write(
                PoemRequest(
                    opening,
                    form=form,
                    stanzas=stanzas,
                    scheme=scheme,
                    settings=SamplingSettings(seed=i, candidates=1, temperature=1.5, top_k=0),
                )
            )
            for i, (scheme, opening, stanzas) in enumerate(cases)
        )
    )
    for (scheme, _opening, stanzas), poem in zip(cases, poems, strict=False):
        assert poem.candidates == 1
        assert_form(poem, form, stanzas)
        assert poem.scores.as_dict() == {"length": 1.0, "tone": 1.0, "rhyme": 1.0, "total": 1.0}, (
            scheme,
            poem.lines,
            poem.scores.violations,
        )


async def test_every_generated_syllable_is_in_the_vocabulary(open_engine, tiny_model_dir):
    """No non-words: every syllable after the opening is a token of the model's syllable vocabulary."""
    codec = codec_for_model(tiny_model_dir)
    engine = await open_engine(tiny_model_dir)
    poems = await asyncio.gather(
        *(
            engine.write(
                PoemRequest(
                    opening,
                    form=form,
                    stanzas=2,
                    settings=SamplingSettings(seed=s, temperature=2.0, top_k=0, top_p=1.0),
                )
            )
            for s in range(3)
            for form, opening in RULE_ABIDING.items()
        )
    )
    for poem in poems:
        generated = [w for line in poem.lines[1:] for w in pieces(line) if w[:1].isalnum()]
        assert generated and all(codec.fold(w) is not None for w in generated), poem.lines


async def test_an_unknown_word_in_the_opening_is_kept_as_written(open_engine, tiny_model_dir):
    engine = await open_engine(tiny_model_dir)
    poem = await engine.write(PoemRequest("Xyzqua Huế", form="lucbat", settings=SamplingSettings(seed=1)))
    assert poem.lines[0].startswith("Xyzqua Huế ")
    assert_form(poem, "lucbat", 1)
    assert poem.scores.rhyme == 1.0
    assert all("unk" not in line for line in poem.lines)
