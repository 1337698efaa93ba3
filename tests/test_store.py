"""bot/store.py against real SQLite files: what a user (or the lead) would notice."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot import store as store_mod
from bot.store import (
    SCHEMA_VERSION,
    NewPoem,
    RatedPoem,
    SchemaVersionError,
    Store,
)
from engine.forms import FORM_IDS
from engine.prompt import prompt_for

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parent.parent


LUC_BAT, SEVEN = "lucbat", "7chu"
assert {LUC_BAT, SEVEN} <= set(FORM_IDS)  # form ids the engine knows
OPENING = "Trăng lên đầu núi"  # a partial first line of lục bát: the model finishes it


def poem(user: str = "tg:1", **kw) -> NewPoem:
    """A poem as the core stores it: the engine's form id and prompt, the settings and scores it reports."""
    fields = dict(
        user_key=user,
        opening=OPENING,
        prompt=prompt_for(LUC_BAT, OPENING, False),
        text="Trăng lên đầu núi xa xa\nGió đưa câu hát về nhà mẹ ơi",
        form=LUC_BAT,
        stanzas=1,
        settings={"temperature": 0.8, "top_p": 0.95},
        seed=1234,
        model_version="v1",
        latency_ms=412.5,
        scores={"length": 1.0, "tone": 0.9, "rhyme": 1.0, "total": 0.97},
    )
    fields.update(kw)
    return NewPoem(**fields)


@pytest.fixture
async def store(tmp_path: Path):
    async with Store(tmp_path / "bot.db") as s:
        yield s


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection for looking at the file behind the store's back."""
    return sqlite3.connect(path)


def rows(store: Store, sql: str, *params) -> list[tuple]:
    """What the file holds, read as the feedback export reads it: plain SQL on the file."""
    with contextlib.closing(raw(store.path)) as db:  # type: ignore[arg-type]
        return db.execute(sql, params).fetchall()


def stars(store: Store, user: str, poem_id: int) -> int | None:
    found = rows(store, "SELECT stars FROM ratings WHERE user_key = ? AND poem_id = ?", user, poem_id)
    return found[0][0] if found else None


def user_exists(store: Store, key: str) -> bool:
    return bool(rows(store, "SELECT 1 FROM users WHERE key = ?", key))


def count(store: Store, table: str) -> int:
    return rows(store, f"SELECT COUNT(*) FROM {table}")[0][0]


def run_children(scripts: list[str], *args: str, timeout: float = 45) -> list[subprocess.CompletedProcess]:
    """Run Python snippets as separate processes, started together (they wait
    for 'go' on stdin after importing), and return their results."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(s), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for s in scripts
    ]
    for p in procs:  # each prints 'ready' once imported
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


CHILD_PRELUDE = """
import asyncio, os, signal, sys
from bot.store import NewPoem, Store
from engine.prompt import prompt_for
print("ready", flush=True)
sys.stdin.readline()
"""


# ---------------------------------------------------------------- settings


async def test_settings_round_trip_and_reset(store: Store) -> None:
    assert await store.get_settings("tg:1") == {}
    assert not user_exists(store, "tg:1")  # reading does not create users

    await store.set_setting("tg:1", "temperature", 0.7)
    await store.set_setting("tg:1", "form", LUC_BAT)
    await store.set_setting("tg:1", "banned", ["mưa", "gió"])
    await store.set_setting("tg:1", "nested", {"a": [1, None, True]})
    await store.set_setting("tg:1", "temperature", 1.1)  # overwrite
    await store.set_setting("dc:2", "form", SEVEN)

    assert await store.get_settings("tg:1") == {
        "temperature": 1.1,
        "form": LUC_BAT,
        "banned": ["mưa", "gió"],
        "nested": {"a": [1, None, True]},
    }
    assert user_exists(store, "tg:1")

    assert await store.reset_settings("tg:1", ["form"]) == 1
    assert "form" not in await store.get_settings("tg:1")
    assert await store.reset_settings("tg:1") == 3
    assert await store.get_settings("tg:1") == {}
    assert await store.get_settings("dc:2") == {"form": SEVEN}  # other user untouched


async def test_a_refused_setting_changes_nothing(store: Store) -> None:
    await store.set_setting("tg:1", "temperature", 0.5)
    await store.set_setting("tg:1", "form", LUC_BAT)
    before = await store.get_settings("tg:1")

    bad = [
        ("callback", object()),  # not JSON-serialisable
        ("top_p", math.nan),  # NaN is not JSON
        ("", 1),  # bad name
        ("x'; DROP TABLE user_settings; --", 1),
    ]
    for name, value in bad:
        with pytest.raises(ValueError):
            await store.set_setting("tg:1", name, value)
        assert await store.get_settings("tg:1") == before

    # a brand-new user whose first write fails is not created either
    with pytest.raises(ValueError):
        await store.set_setting("tg:99", "b", {1, 2})
    assert not user_exists(store, "tg:99")

    await store.set_setting("tg:1", "top_p", 0.9)
    assert await store.get_settings("tg:1") == {"temperature": 0.5, "form": LUC_BAT, "top_p": 0.9}


async def test_failure_inside_a_transaction_rolls_it_back(store: Store) -> None:
    """A write that fails half-way (here: the database refuses the setting's row,
    as it would on a full disk) leaves no trace of its first half (the new user's row)."""
    await store.set_setting("tg:1", "form", LUC_BAT)
    with raw(store.path) as db:  # type: ignore[arg-type]
        db.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON user_settings WHEN NEW.name = 'boom'"
            " BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="boom"):
        await store.set_setting("tg:2", "boom", 2)
    assert not user_exists(store, "tg:2")
    assert await store.get_settings("tg:1") == {"form": LUC_BAT}
    await store.set_setting("tg:2", "a", 1)  # the store is still usable
    assert await store.get_settings("tg:2") == {"a": 1}


@pytest.mark.parametrize(
    "key", ["", "tg:", "tg", "xx:1", "TG:1", "tg:1 2", "tg:" + "1" * 65, "tg:1\n", "console:a/b", None, 12]
)
async def test_invalid_user_keys_are_refused(store: Store, key) -> None:
    with pytest.raises(ValueError):
        await store.set_setting(key, "a", 1)
    with pytest.raises(ValueError):
        await store.get_settings(key)
    assert count(store, "users") == 0


async def test_valid_user_keys(store: Store) -> None:
    for key in ["tg:123", "tg:-1001234567890", "dc:456789012345678901", "console:local"]:
        await store.set_setting(key, "form", LUC_BAT)
        assert user_exists(store, key)


# ---------------------------------------------------------------- files, restarts, migrations


async def test_fresh_file_is_created_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "bot.db"
    async with Store(path):
        pass
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "user_settings", "poems", "ratings", "model_versions"} <= tables


async def test_data_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    async with Store(path) as s:
        await s.set_setting("tg:1", "temperature", 0.6)
        pid = await s.add_poem(poem())
        await s.rate("dc:2", pid, 4)
        await s.record_model_version("v1", "/models/v1", {"ppl": 12.5}, status="serving")

    async with Store(path) as s:  # "restart"
        assert await s.get_settings("tg:1") == {"temperature": 0.6}
        got = await s.get_poem(pid)
        assert got is not None and got.text == poem().text and got.settings == poem().settings
        assert got.seed == 1234 and got.latency_ms == 412.5 and got.scores == poem().scores
        assert got.form == LUC_BAT and got.prompt == poem().prompt
        assert got.created_at.tzinfo is not None
        assert abs((datetime.now(UTC) - got.created_at).total_seconds()) < 60
        assert stars(s, "dc:2", pid) == 4
        serving = await s.serving_model()
        assert serving is not None and serving.version == "v1" and serving.metrics == {"ppl": 12.5}


async def test_newer_schema_is_refused_and_file_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    with raw(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    s = Store(path)
    with pytest.raises(SchemaVersionError, match=rf"schema version {SCHEMA_VERSION + 5}.*newer"):
        await s.open()
    with pytest.raises(RuntimeError, match="not open"):  # nothing half-open to use
        await s.get_settings("tg:1")
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0


async def test_later_migration_applies_on_open_and_failed_one_rolls_back(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "bot.db"
    async with Store(path) as s:
        pid = await s.add_poem(poem())

    # A broken migration: first statement fine, second fails -> nothing applied.
    broken = "ALTER TABLE poems ADD COLUMN title TEXT;\nCREATE TABLE poems (x);"
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, broken])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        await Store(path).open()
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        cols = [r[1] for r in db.execute("PRAGMA table_info(poems)")]
    assert "title" not in cols

    good = "-- v2; adds titles\nALTER TABLE poems ADD COLUMN title TEXT;\nCREATE INDEX poems_title ON poems(title);"
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS[:-1], good])
    async with Store(path) as s:
        got = await s.get_poem(pid)
        assert got is not None and got.text == poem().text
    with raw(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


async def test_closed_store_raises(tmp_path: Path) -> None:
    s = Store(tmp_path / "bot.db")
    with pytest.raises(RuntimeError, match="not open"):
        await s.get_settings("tg:1")
    await s.open()
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(RuntimeError, match="not open"):
        await s.set_setting("tg:1", "a", 1)


# ---------------------------------------------------------------- crash safety


def test_accepted_writes_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    child = (
        CHILD_PRELUDE
        + """
async def main():
    s = Store(sys.argv[1])
    await s.open()
    pid = await s.add_poem(NewPoem(user_key="tg:7", opening="Mưa", prompt=prompt_for("lucbat", "Mưa", False),
                                   text="Mưa rơi", form="lucbat", stanzas=1, model_version="v1", latency_ms=1.0))
    await s.set_setting("tg:7", "temperature", 0.42)
    await s.rate("dc:8", pid, 5)
    print(pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close(), no checkpoint, no atexit
asyncio.run(main())
"""
    )
    (result,) = run_children([child], str(path))
    assert result.returncode == -signal.SIGKILL, result.stderr
    pid = int(result.stdout.split()[-1])
    # the writes are in the WAL, not yet checkpointed into the main file
    assert Path(str(path) + "-wal").stat().st_size > 0

    async def check() -> None:
        async with Store(path) as s:
            assert await s.get_settings("tg:7") == {"temperature": 0.42}
            assert stars(s, "dc:8", pid) == 5
            p = await s.get_poem(pid)
            assert p is not None and p.text == "Mưa rơi"

    asyncio.run(check())


# ---------------------------------------------------------------- concurrency


async def test_many_coroutines_on_one_store(store: Store) -> None:
    pid = await store.add_poem(poem("console:author"))
    n = 200

    async def one(i: int) -> None:
        if i % 2:
            await store.rate(f"tg:{i}", pid, i % 5 + 1)
        else:
            await store.set_setting(f"dc:{i}", "form", LUC_BAT)
        await store.set_setting(f"console:u{i}", "i", i)

    await asyncio.gather(*(one(i) for i in range(n)))

    for i in range(n):
        if i % 2:
            assert stars(store, f"tg:{i}", pid) == i % 5 + 1
        else:
            assert await store.get_settings(f"dc:{i}") == {"form": LUC_BAT}
        assert await store.get_settings(f"console:u{i}") == {"i": i}
    assert count(store, "ratings") == n // 2 and count(store, "user_settings") == n // 2 + n
    assert count(store, "users") == 1 + n + n  # poem author + tg/dc users + console users


async def test_cancelled_operation_leaves_store_usable(store: Store) -> None:
    pid = await store.add_poem(poem())
    tasks = [asyncio.create_task(store.rate(f"tg:{i}", pid, 3)) for i in range(50)]
    await asyncio.sleep(0)
    for t in tasks[10:]:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.set_setting("tg:1", "ok", True)
    assert await store.get_settings("tg:1") == {"ok": True}
    done = sum(1 for t in tasks if not t.cancelled())
    assert count(store, "ratings") == done


def test_several_processes_write_one_file(tmp_path: Path) -> None:
    """4 processes x 50 writes on one (not yet existing) file, all at once."""
    path = tmp_path / "shared.db"
    child = (
        CHILD_PRELUDE
        + """
async def main():
    w = int(sys.argv[2])  # replaced per worker below
    async with Store(sys.argv[1]) as s:
        pid = await s.add_poem(NewPoem(user_key=f"tg:{w}", opening="Mưa", prompt=prompt_for("lucbat", "Mưa", False),
                                       text=f"poem {w}", form="lucbat", stanzas=1, model_version="v1", latency_ms=1.0))
        for i in range(49):
            if i % 2:
                await s.set_setting(f"dc:{w}-{i}", "n", i)
            else:
                await s.rate(f"console:{w}-{i}", pid, i % 5 + 1)
    print("done", flush=True)
asyncio.run(main())
"""
    )
    workers = 4
    scripts = [child.replace("int(sys.argv[2])", str(w)) for w in range(workers)]  # worker number
    results = run_children(scripts, str(path))
    for r in results:
        assert r.returncode == 0, r.stderr
        assert "locked" not in r.stderr and r.stdout.strip() == "done"

    with raw(path) as db:
        assert db.execute("SELECT COUNT(*) FROM poems").fetchone()[0] == workers
        assert db.execute("SELECT COUNT(*) FROM user_settings").fetchone()[0] == workers * 24
        assert db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == workers * 25
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for w in range(workers):
            for i in range(1, 49, 2):
                row = db.execute(
                    "SELECT value_json FROM user_settings WHERE user_key = ? AND name = 'n'", (f"dc:{w}-{i}",)
                ).fetchone()
                assert row == (str(i),)


# ---------------------------------------------------------------- poems and ratings


async def test_rating_can_be_changed(store: Store) -> None:
    pid = await store.add_poem(poem())
    first = await store.rate("tg:2", pid, 3)
    assert first.created and first.changed and first.previous is None and first.stars == 3
    second = await store.rate("tg:2", pid, 5)
    assert not second.created and second.changed and second.previous == 3 and second.stars == 5
    same = await store.rate("tg:2", pid, 5)
    assert not same.created and not same.changed and same.previous == 5
    assert stars(store, "tg:2", pid) == 5
    assert count(store, "ratings") == 1
    assert stars(store, "tg:3", pid) is None


@pytest.mark.parametrize("bad", [0, 6, -1, "5", None, 4.0, True, 3.5])
async def test_invalid_stars_change_nothing(store: Store, bad) -> None:
    pid = await store.add_poem(poem())
    await store.rate("tg:2", pid, 2)
    with pytest.raises(ValueError):
        await store.rate("tg:2", pid, bad)
    with pytest.raises(ValueError):
        await store.rate("tg:3", pid, bad)
    assert stars(store, "tg:2", pid) == 2
    assert stars(store, "tg:3", pid) is None
    assert not user_exists(store, "tg:3")


async def test_rating_unknown_poem_raises_lookup_error(store: Store) -> None:
    with pytest.raises(LookupError):
        await store.rate("tg:5", 12345, 4)
    assert not user_exists(store, "tg:5")  # the transaction was rolled back
    assert count(store, "ratings") == 0


async def test_last_poem_and_get_poem(store: Store) -> None:
    assert await store.last_poem("tg:1") is None
    assert await store.get_poem(1) is None
    a = await store.add_poem(poem(text="một"))
    b = await store.add_poem(poem(text="hai", seed=None, settings={}, scores={}))
    await store.add_poem(poem(user="dc:9", text="ba"))
    last = await store.last_poem("tg:1")
    assert last is not None and last.id == b > a and last.text == "hai" and last.seed is None
    assert last.settings == {} and last.scores == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"stanzas": -1},
        {"stanzas": "2"},
        {"seed": 2**64},
        {"latency_ms": math.inf},
        {"latency_ms": -3},
        {"settings": {"x": object()}},
        {"scores": [1, 2]},
        {"model_version": ""},
        {"text": None},
        {"user_key": "irc:1"},
    ],
)
async def test_bad_poems_are_refused(store: Store, bad) -> None:
    with pytest.raises(ValueError):
        await store.add_poem(poem(**bad))
    assert count(store, "poems") == 0


async def test_sql_looking_text_is_stored_verbatim(store: Store) -> None:
    evil = "'); DROP TABLE poems; --"
    nasty = 'Robert"); DELETE FROM ratings WHERE (1=1 OR "\x00 %s {} ? :name'
    pid = await store.add_poem(
        poem(opening=evil, prompt=nasty, text=evil + "\n" + nasty, form="'; --", settings={evil: nasty})
    )
    await store.set_setting("tg:1", "note", evil)
    await store.rate("tg:2", pid, 4)

    got = await store.get_poem(pid)
    assert got is not None
    assert (got.opening, got.prompt, got.text, got.form) == (evil, nasty, evil + "\n" + nasty, "'; --")
    assert got.settings == {evil: nasty}
    assert await store.get_settings("tg:1") == {"note": evil}
    assert stars(store, "tg:2", pid) == 4
    assert count(store, "poems") == 1 and count(store, "ratings") == 1


async def test_delete_user_data_removes_only_theirs(store: Store) -> None:
    mine = await store.add_poem(poem("tg:1"))
    mine2 = await store.add_poem(poem("tg:1"))
    theirs = await store.add_poem(poem("dc:2"))
    await store.set_setting("tg:1", "a", 1)
    await store.set_setting("tg:1", "b", 2)
    await store.set_setting("dc:2", "a", 1)
    await store.rate("tg:1", theirs, 5)  # my rating of their poem
    await store.rate("dc:2", mine, 4)  # their rating of my poem
    await store.rate("dc:2", theirs, 3)
    await store.rate("console:x", mine2, 2)

    counts = await store.delete_user_data("tg:1")
    assert counts == {"settings": 2, "ratings": 1, "poems": 2, "ratings_on_their_poems": 2, "users": 1}

    assert not user_exists(store, "tg:1")
    assert await store.get_settings("tg:1") == {}
    assert await store.get_poem(mine) is None and await store.get_poem(mine2) is None
    assert await store.last_poem("tg:1") is None
    assert stars(store, "tg:1", theirs) is None
    # the other users' own data is intact
    assert await store.get_settings("dc:2") == {"a": 1}
    assert await store.get_poem(theirs) is not None
    assert stars(store, "dc:2", theirs) == 3
    assert user_exists(store, "console:x")
    assert count(store, "poems") == 1 and count(store, "ratings") == 1 and count(store, "users") == 2

    # deleting again (or an unknown user) is a no-op; new poem ids are not reused
    assert set((await store.delete_user_data("tg:1")).values()) == {0}
    assert await store.add_poem(poem("tg:1")) > max(mine, mine2, theirs)


async def test_public_top_poems_ordering(store: Store) -> None:
    """/top's list: by average stars, then number of raters, then newest; the author's own stars count for nothing."""
    ids = [await store.add_poem(poem(text=f"bài {i}")) for i in range(5)]  # all by tg:1
    # poem 0: avg 5 from 1 rater; poem 1: avg 5 from 3; poem 2: avg 4.5; poem 3: avg 2; poem 4: only its author's
    await store.rate("tg:10", ids[0], 5)
    for u in ("tg:10", "tg:11", "tg:12"):
        await store.rate(u, ids[1], 5)
    await store.rate("tg:10", ids[2], 4)
    await store.rate("tg:11", ids[2], 5)
    await store.rate("tg:1", ids[3], 5)  # the author's own
    await store.rate("tg:10", ids[3], 2)
    await store.rate("tg:1", ids[4], 5)

    top = await store.public_top_poems(min_raters=1)
    assert [(r.poem.id, r.avg_stars, r.n_ratings) for r in top] == [
        (ids[1], 5.0, 3),
        (ids[0], 5.0, 1),
        (ids[2], 4.5, 2),
        (ids[3], 2.0, 1),
    ]
    poem_, avg, n = top[0]  # unpacks as a tuple
    assert isinstance(top[0], RatedPoem) and poem_.text == "bài 1" and (avg, n) == (5.0, 3)
    assert [r.poem.id for r in await store.public_top_poems(limit=2, min_raters=1)] == [ids[1], ids[0]]
    assert [r.poem.id for r in await store.public_top_poems()] == [ids[1], ids[2]]  # by default two raters

    await store.rate("tg:10", ids[0], 1)  # changing a rating moves the poem
    assert [r.poem.id for r in await store.public_top_poems(min_raters=1)][-1] == ids[0]


# ---------------------------------------------------------------- model versions


async def test_one_serving_model_at_a_time(store: Store) -> None:
    assert await store.serving_model() is None
    await store.record_model_version("v1", "/models/v1", {"ppl": 20.0}, status="serving")
    await store.record_model_version("v2", Path("/models/v2"), {"ppl": 15.0})
    assert (await store.get_model_version("v2")).status == "candidate"  # type: ignore[union-attr]

    assert await store.set_serving_model("v2") == "v1"
    serving = await store.serving_model()
    assert serving is not None and serving.version == "v2" and serving.path == "/models/v2"
    assert (await store.get_model_version("v1")).status == "retired"  # type: ignore[union-attr]

    await store.record_model_version("v3", "/models/v3", status="serving")
    statuses = {m.version: m.status for m in await store.list_model_versions()}
    assert statuses == {"v1": "retired", "v2": "retired", "v3": "serving"}

    with pytest.raises(LookupError):
        await store.set_serving_model("v9")
    assert (await store.serving_model()).version == "v3"  # type: ignore[union-attr]

    await store.record_model_version("v2", "/models/v2", status="rejected")  # what a failed gate records
    assert (await store.get_model_version("v2")).status == "rejected"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        await store.record_model_version("v4", "/m", status="best")

    # concurrent switches still leave exactly one serving model
    await asyncio.gather(*(store.set_serving_model(v) for v in ("v1", "v2", "v3", "v1", "v3")))
    statuses = [m.status for m in await store.list_model_versions()]
    assert statuses.count("serving") == 1

    # and the database itself refuses a second one
    with raw(store.path) as db, pytest.raises(sqlite3.IntegrityError):  # type: ignore[arg-type]
        db.execute("UPDATE model_versions SET status = 'serving'")
