"""/caidat van: a user's rhyme scheme for 5, 7 and 8 chữ reaches the poem they get."""

import pytest

from bot.config import Settings
from bot.console import handle_line
from bot.runtime import open_runtime
from engine.forms import check


@pytest.fixture
async def runtime(tiny_model_dir, tmp_path):
    settings = Settings(THO_MODEL=tiny_model_dir, THO_DB=tmp_path / "tho.db", THO_POEMS_PER_MINUTE=100)
    async with open_runtime(settings, watch=False) as rt:
        yield rt


async def test_the_chosen_scheme_is_the_one_the_poem_rhymes_by(runtime):
    core = runtime.core
    assert "vần ôm" in (await handle_line(core, "/caidat van om")).text
    reply = await handle_line(core, "/tho Em không nghe mùa thu dưới trăng mờ")
    lines = (await runtime.store.get_poem(reply.poem_id)).text.split("\n")
    assert check(lines, "8chu", 1, "om").rhyme == 1.0, lines

    assert "vần liền" in (await handle_line(core, "/caidat van vần liền")).text
    reply = await handle_line(core, "/tho Em không nghe mùa thu dưới trăng mờ")
    lines = (await runtime.store.get_poem(reply.poem_id)).text.split("\n")
    assert check(lines, "8chu", 1, "lien").rhyme == 1.0, lines


async def test_an_unknown_scheme_is_refused_and_changes_nothing(runtime):
    core = runtime.core
    await handle_line(core, "/caidat van cheo")
    refused = await handle_line(core, "/caidat van xyz")
    assert refused.error
    shown = (await handle_line(core, "/caidat")).text
    assert "vần chéo" in shown
