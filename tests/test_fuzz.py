"""Fuzzing every command's argument parser and every callback-data parser (hypothesis).

Any string gives a reply or a refusal, never an exception; a refusal changes nothing in the database.
The core runs for real (store on a SQLite file, the tiny model) in one event loop kept for the module.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import actions
from bot.config import Settings
from bot.core import ADMIN_COMMANDS, SETTING_NAMES, Reply, clean_input, parse_setting
from bot.runtime import open_runtime
from engine.settings import SettingError

pytestmark = pytest.mark.timeout(900)
USER, ADMIN = "tg:7", "tg:1"
COMMANDS = ["tho", "tholai", "caidat", "danhgia", "top", "xoadulieu", "giupdo", "start", "help", *ADMIN_COMMANDS]
TABLES = ("users", "user_settings", "poems", "ratings", "model_versions")
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# Text that looks like what people (and attackers) type: words, numbers, setting names, control characters.
WORDS = st.sampled_from(
    [
        *SETTING_NAMES,
        "macdinh",
        "co",
        "khong",
        "chum",
        "lucbat",
        "5chu",
        "0.9",
        "-1",
        "1e309",
        "nan",
        "inf",
        "99999999999999999999",
        "Mùa thu lá vàng rơi",
        "\x00",
        "\x1b[31m",
        "@",
        ":",
        "chon",
        "quaylai",
        "tiny-a",
        "😀",
        "'; DROP TABLE poems; --",
        " ",
        "\n",
    ]
)
TYPED = st.one_of(
    st.text(max_size=200),
    st.lists(WORDS, max_size=6).map(" ".join),
    st.builds(lambda a, b: f"{a} {b}", st.sampled_from(list(SETTING_NAMES)), st.text(max_size=40)),
)
CALLBACKS = st.one_of(
    st.text(max_size=120),
    st.from_regex(r"(rate|set|reset|delete)[:@][ -~]{0,80}", fullmatch=True),
    st.builds(
        lambda p, s: f"rate:{p}:{s}",
        st.integers(min_value=-(2**70), max_value=2**70),
        st.integers(min_value=-3, max_value=9),
    ),
    st.builds(lambda n, v, o: f"set:{n}:{v}@{o}", WORDS, WORDS, st.sampled_from([USER, ADMIN, "tg:", "dc:9", ""])),
    st.builds(
        lambda a, o: f"delete:{a}@{o}",
        st.sampled_from(["yes", "no", "YES", ""]),
        st.sampled_from(["tg:8", "tg:1", "console:local", "tg:7 "]),
    ),
)


class Bot:
    """The real runtime in its own event loop, driven from synchronous hypothesis tests."""

    def __init__(self, model_dir, db):
        self.db = db
        self.loop = asyncio.new_event_loop()
        config = Settings(
            _env_file=None,
            THO_MODEL=model_dir,
            THO_DB=db,
            THO_POEMS_PER_MINUTE=600,
            THO_MODEL_WATCH_SECONDS=0,
            THO_ADMINS=ADMIN,
        )
        self._context = open_runtime(config, watch=False)
        self.runtime = self.loop.run_until_complete(self._context.__aenter__())
        self.run(self.runtime.core.command(USER, "caidat", "ungvien 1"))
        self.run(self.runtime.core.command(USER, "tho", "Mùa thu lá vàng rơi"))

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def state(self) -> tuple:
        with sqlite3.connect(self.db) as db:
            return tuple(db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in TABLES)

    def close(self) -> None:
        self.run(self._context.__aexit__(None, None, None))
        self.loop.close()


@pytest.fixture(scope="module")
def bot(tiny_model_dir, tmp_path_factory):
    bot = Bot(tiny_model_dir, tmp_path_factory.mktemp("fuzz") / "tho.db")
    yield bot
    bot.close()


def check(bot: Bot, reply: object, before: tuple) -> None:
    assert isinstance(reply, Reply) and reply.text.strip()
    if reply.error:
        assert bot.state() == before, reply.text


@FUZZ
@given(
    name=st.sampled_from([c for c in COMMANDS if c not in ("tho", "tholai")]),
    args=TYPED,
    user=st.sampled_from([USER, ADMIN]),
)
def test_any_command_arguments_give_a_reply_or_a_refusal(bot, name, args, user):
    before = bot.state()
    check(bot, bot.run(bot.runtime.core.command(user, name, args)), before)


@settings(FUZZ, max_examples=40)
@given(args=TYPED)
def test_any_opening_gives_a_poem_or_a_refusal(bot, args):
    before = bot.state()
    reply = bot.run(bot.runtime.core.command(USER, "tho", args))
    check(bot, reply, before)
    assert reply.error or reply.poem_id is not None or reply.failed


@FUZZ
@given(data=CALLBACKS, user=st.sampled_from([USER, ADMIN, "dc:9"]))
def test_any_callback_data_gives_a_reply_or_a_refusal(bot, data, user):
    before = bot.state()
    reply = bot.run(bot.runtime.core.action(user, data))
    check(bot, reply, before)
    if actions.parse(data) is None:
        assert reply.error


@settings(FUZZ, max_examples=2000)
@given(data=st.one_of(st.text(max_size=100), CALLBACKS))
def test_callback_parser_is_total_and_bounded(data):
    action = actions.parse(data)
    if action is not None:
        assert action.encode() == data and len(data.encode()) <= actions.MAX_ACTION_BYTES
        if isinstance(action, actions.Rate):
            assert 1 <= action.poem_id <= actions.MAX_POEM_ID and 1 <= action.stars <= 5


@settings(FUZZ, max_examples=2000)
@given(name=st.one_of(st.sampled_from(list(SETTING_NAMES)), st.text(max_size=20)), raw=TYPED)
def test_setting_parser_only_refuses_with_its_own_errors(name, raw):
    try:
        parse_setting(name, raw)
    except (KeyError, SettingError, ValueError):
        pass
    assert "\x00" not in clean_input(raw) and "\x1b" not in clean_input(raw)
