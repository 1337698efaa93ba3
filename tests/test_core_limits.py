"""Bounds and small slips of the core (issue 12, items 3-6 and 10), on the real core, store and tiny model."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot import actions, texts
from bot.config import Settings
from bot.console import handle_line
from bot.core import SETTING_NAMES, RateLimiter, example_value, parse_setting
from bot.runtime import open_runtime
from tests.helpers import core_settings

OPENING = "Mùa thu lá vàng rơi"


@pytest.fixture
async def runtime(tiny_model_dir, tmp_path):
    settings = core_settings(tiny_model_dir, tmp_path)
    async with open_runtime(settings, watch=False) as rt:
        yield rt


def state(runtime) -> tuple:
    with sqlite3.connect(runtime.settings.db) as db:
        return tuple(
            db.execute(sql).fetchall()
            for sql in (
                "SELECT id, user_key, text FROM poems ORDER BY id",
                "SELECT * FROM user_settings ORDER BY 1, 2",
                "SELECT user_key, poem_id, stars FROM ratings ORDER BY 1, 2",
            )
        )


# -- 3: callback data ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        "rate:99999999999999999999:5",
        "rate:9223372036854775808:5",
        "rate:0:5",
        "rate:-1:5",
        "rate:1:5:6",
        "rate:1:٥",
        "rate:１:5",
        "set:nhietdo:0.6",
        "reset:",
        "delete:yes",
        "delete:yes@",
        "delete:maybe@console:local",
        "set:nhietdo:0.6@console:local" + "x" * 60,
        "",
        "rate",
        ":",
        "\x00rate:1:5",
    ],
)
async def test_absurd_callback_data_is_refused_and_changes_nothing(runtime, data):
    await handle_line(runtime.core, f"/tho {OPENING}")
    before = state(runtime)
    reply = await runtime.core.action("console:local", data)
    assert reply.error and reply.answer == texts.UNKNOWN_ACTION
    assert state(runtime) == before


def test_action_parser_round_trips_and_bounds():
    for action in (
        actions.Rate(actions.MAX_POEM_ID, 5),
        actions.SetOption("the", "lucbat", "tg:123456789"),
        actions.Reset("dc:123456789012345678"),
        actions.Delete(True, "console:local"),
    ):
        assert actions.parse(action.encode()) == action
        assert len(action.encode().encode()) <= actions.MAX_ACTION_BYTES
    assert actions.parse(f"rate:{actions.MAX_POEM_ID + 1}:5") is None


# -- 2: buttons made for one user ----------------------------------------------------------------------
async def test_someone_elses_confirmation_and_panel_do_nothing(runtime):
    core = runtime.core
    await handle_line(core, f"/tho {OPENING}")  # console:local owns a poem
    await core.tho("tg:2", OPENING)
    ask = await core.command("console:local", "xoadulieu")
    panel = await core.command("console:local", "caidat")
    before = state(runtime)
    for button in [*ask.buttons[0], *(b for row in panel.buttons for b in row)]:
        reply = await core.action("tg:2", button.action)
        assert reply.error and reply.answer == texts.NOT_YOUR_BUTTON, button
    assert state(runtime) == before
    # The owner's own press works; anyone may rate.
    assert "1 bài thơ" in (await core.action("console:local", ask.buttons[0][0].action)).text
    poem = await core.tho("tg:3", OPENING)
    assert not (await core.action("tg:2", poem.buttons[0][3].action)).error


# -- 5: one user cannot hold the machine -----------------------------------------------------------------
async def test_one_poem_at_a_time_per_user(runtime):
    core = runtime.core
    first, second = await asyncio.gather(core.tho("tg:5", OPENING), core.tho("tg:5", OPENING))
    assert sorted([first.text == texts.BUSY, second.text == texts.BUSY]) == [False, True]
    assert (await core.tho("tg:5", OPENING)).poem_id is not None  # free again afterwards
    assert core.in_flight == 0


async def test_engine_call_has_a_deadline(runtime):
    core = runtime.core
    core.poem_timeout_seconds = 0.001
    reply = await core.tho("tg:6", OPENING)
    assert reply.error and reply.text == texts.POEM_TIMEOUT.format(seconds=0.001)
    assert state(runtime)[0] == [] and core.in_flight == 0


async def test_heavy_settings_are_refused_when_set_and_when_stored(runtime):
    core = runtime.core
    for args in ("ungvien 16", "sochum 8"):  # 16 sampled candidates: 16 (beams only count for beam search)
        assert not (await core.caidat("tg:7", args)).error
    before = state(runtime)
    reply = await core.caidat("tg:7", "chienluoc chum")  # 16 x 8 x 1 = 128
    assert reply.error and "16 bản nháp × 8 chùm × 1 khổ = 128" in reply.text
    reply = await core.caidat("tg:7", "kho 4")  # 16 x 1 x 4 = 64
    assert reply.error and "= 64, tối đa 16" in reply.text
    assert state(runtime) == before
    assert not (await core.caidat("tg:7", "ungvien 2")).error
    assert not (await core.caidat("tg:7", "chienluoc chum")).error  # 2 x 8 = 16: allowed
    reply = await core.caidat("tg:7", "ungvien macdinh")  # back to the model's 1: lighter, allowed
    assert not reply.error
    # Settings stored before the limit (or with an older limit) are refused at /tho, nothing written.
    for name, value in {"candidates": 16, "strategy": "beam", "num_beams": 8, "stanzas": 4}.items():
        await runtime.store.set_setting("tg:8", name, value)
    before = state(runtime)
    reply = await core.tho("tg:8", OPENING)
    assert reply.error and "512" in reply.text and state(runtime) == before


async def test_too_many_poems_at_once_are_refused(runtime):
    core = runtime.core
    core.max_in_flight = 2
    replies = await asyncio.gather(*(core.tho(f"tg:{100 + i}", OPENING) for i in range(4)))
    assert sum(r.text == texts.OVERLOADED for r in replies) == 2
    assert sum(r.poem_id is not None for r in replies) == 2


async def test_help_says_the_limits(runtime):
    text = (await runtime.core.command("tg:1", "giupdo")).text
    assert "mỗi người một bài một lúc" in text and "tối đa 100 bài mỗi phút" in text
    assert "không quá 16" in text and "60 giây" in text


# -- 4: per-user tables are bounded ----------------------------------------------------------------------
def test_rate_limiter_forgets_users_who_left_the_window():
    now = [0.0]
    limiter = RateLimiter(6, clock=lambda: now[0])
    for i in range(10_000):
        assert limiter.retry_after(f"tg:{i}") == 0
        limiter.record(f"tg:{i}")
    for _ in range(100):
        limiter.record("tg:0")
    assert len(limiter._times["tg:0"]) == 6  # only the last `limit` times matter
    now[0] = 61.0
    assert limiter.retry_after("tg:1") == 0
    assert len(limiter) == 0
    limiter.record("tg:1")
    now[0] = 62.0
    assert limiter.retry_after("tg:2") == 0 and len(limiter) == 1


# -- 10: small slips ---------------------------------------------------------------------------------------
def test_every_suggested_example_is_accepted():
    for name in SETTING_NAMES:
        key, value = parse_setting(name, example_value(SETTING_NAMES[name]))
        assert key == SETTING_NAMES[name]


async def test_missing_value_suggests_a_valid_one(runtime):
    for name in ("nhietdo", "the", "chienluoc", "kho", "hatgiong"):
        reply = await runtime.core.caidat("tg:9", name)
        example = reply.text.rsplit(" ", 1)[1]
        assert not (await runtime.core.caidat("tg:9", f"{name} {example}")).error, reply.text


async def test_values_are_shown_in_vietnamese_and_in_full(runtime):
    core = runtime.core
    saved = (await core.caidat("tg:10", "chienluoc chum")).text
    assert saved == texts.SETTING_SAVED.format(label=texts.SETTING_LABELS["strategy"], value="chùm (beam)")
    assert "beam" not in (await core.caidat("tg:10", "")).text.split("chiến lược")[1].split("\n")[0].replace(
        "chùm (beam)", ""
    )
    refused = (await core.caidat("tg:10", "hatgiong -1")).text
    assert "0..2147483647" in refused and "e+" not in refused


async def test_control_characters_and_terminal_escapes_separate_words(runtime):
    core = runtime.core
    glued = await core.tho("tg:11", "Mùa\x00thu lá\x1b[31m vàng\x1b[0m rơi")
    assert glued.poem_id is not None
    ((text,),) = [(t,) for _, user, t in state(runtime)[0] if user == "tg:11"]
    assert text.startswith("Mùa thu lá vàng rơi\n") and "[31m" not in text and "[0m" not in text


# -- 6: /top shows no private poem ---------------------------------------------------------------------------
async def test_top_needs_other_raters_and_respects_opting_out(runtime):
    core = runtime.core
    mine = await core.tho("tg:20", OPENING)
    await core.rate("tg:20", mine.poem_id, 5)
    assert (await core.top("tg:30")).text == texts.TOP_EMPTY  # self-rating: private
    await core.rate("tg:21", mine.poem_id, 4)
    assert (await core.top("tg:30")).text == texts.TOP_EMPTY  # one other rater is not enough
    await core.rate("tg:22", mine.poem_id, 5)
    top = (await core.top("tg:30")).text
    assert "4.5★ (2 lượt)" in top and "tg:" not in top  # the author's own 5★ is not counted; no ids
    assert not (await core.caidat("tg:20", "congkhai khong")).error
    assert (await core.top("tg:30")).text == texts.TOP_EMPTY
    await core.caidat("tg:20", "congkhai co")
    assert "4.5★" in (await core.top("tg:30")).text


async def test_poems_beyond_the_engine_slots_wait_their_turn(tiny_model_dir, tmp_path):
    settings = core_settings(tiny_model_dir, tmp_path, THO_MAX_CONCURRENT=1)
    assert settings.engine_concurrency() == 1 and Settings(_env_file=None).engine_concurrency() == 16
    async with open_runtime(settings, watch=False) as rt:
        core = rt.core
        running = []
        write = rt.engine.write

        async def counting_write(request, **options):  # the real engine, counted
            running.append(1)
            assert len(running) == 1  # never two at once
            try:
                return await write(request, **options)
            finally:
                running.pop()

        rt.engine.write = counting_write
        replies = await asyncio.gather(*(core.tho(f"tg:{200 + i}", OPENING) for i in range(3)))
        assert all(r.poem_id is not None for r in replies)
        # One waiting behind a slow one past its deadline times out without reaching the engine.
        core.poem_timeout_seconds = 0.05
        calls = []
        rt.engine.write = lambda request, **options: calls.append(request) or write(request, **options)
        async with core._engine_slots:  # the one slot is taken
            reply = await core.tho("tg:210", OPENING)
        assert reply.text == texts.POEM_TIMEOUT.format(seconds=0.05) and not calls


async def test_reset_with_a_name_resets_nothing_and_says_how(runtime):
    """ "/caidat macdinh nhietdo" meant one setting: it erased every setting before (the name was ignored)."""
    core = runtime.core
    await core.command("tg:8", "caidat", "the lucbat")
    await core.command("tg:8", "caidat", "nhietdo 0.7")
    before = state(runtime)
    reply = await core.command("tg:8", "caidat", "macdinh nhietdo")
    assert reply.error and reply.text == texts.RESET_TAKES_NO_NAME.format(name="nhietdo")
    assert state(runtime) == before
    assert not (await core.command("tg:8", "caidat", "nhietdo macdinh")).error  # the way it says
    assert (await core.command("tg:8", "caidat", "macdinh")).text == texts.SETTINGS_RESET


async def test_the_same_rating_again_is_not_called_a_change(runtime):
    core = runtime.core
    poem = await core.tho("tg:9", OPENING)
    assert (await core.rate("tg:9", poem.poem_id, 5)).answer == texts.RATED_NEW.format(stars=5)
    assert (await core.rate("tg:9", poem.poem_id, 5)).answer == texts.RATED_SAME.format(stars=5)
    assert (await core.rate("tg:9", poem.poem_id, 3)).answer == texts.RATED_CHANGED.format(previous=5, stars=3)
    assert state(runtime)[2] == [("tg:9", poem.poem_id, 3)]


async def test_all_drawing_places_taken_says_so_not_that_the_users_poem_is_being_written(runtime):
    """With every drawing place taken (by other users' pictures), /anh and /giaithich answered "I am still
    writing your previous poem" to a user who had none being written."""
    import contextlib

    from bot.core import MAX_DRAWINGS

    core = runtime.core
    await core.tho("tg:10", OPENING)
    async with contextlib.AsyncExitStack() as others:
        for _ in range(MAX_DRAWINGS):
            assert await others.enter_async_context(core._picture_slot())
        for command in ("anh", "giaithich"):
            reply = await core.command("tg:10", command)
            assert reply.error and reply.text == texts.DRAWING_BUSY, command
    assert (await core.command("tg:10", "anh")).image is not None  # places free again
