"""Storage at start-up (issue 12.7): check everything first, change nothing until the checks pass, one clear line.

Through the real entry point (`python -m bot console --db ...`) and through Store.open.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.store import SCHEMA_VERSION, SchemaVersionError, Store, StoreUnusableError

pytestmark = pytest.mark.timeout(300)


def console(model: Path, db: Path, stdin: str = "", prefix: list[str] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "bot", "console", "--model", str(model), "--db", str(db)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "THO_MODEL_WATCH_SECONDS": "0"},
    )


def assert_one_clear_line(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, done
    lines = [line for line in done.stderr.splitlines() if line.strip() and "Loading weights" not in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("Không dùng được cơ sở dữ liệu"), lines
    for word in words:
        assert word in lines[0], lines


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(directory.rglob("*"))
    }


def newer_database(path: Path) -> None:
    with sqlite3.connect(path) as db:  # a rollback-journal file, as another tool might leave it
        db.execute("CREATE TABLE future (x)")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")


async def test_newer_schema_is_refused_before_anything_changes(tmp_path):
    newer_database(tmp_path / "tho.db")
    before = snapshot(tmp_path)
    with pytest.raises(SchemaVersionError, match="was not changed"):
        await Store(tmp_path / "tho.db").open()
    assert snapshot(tmp_path) == before  # still in rollback-journal mode, no -wal or -shm file


@pytest.mark.parametrize("case", ["directory", "under a file", "not sqlite", "newer schema"])
def test_bad_database_paths_fail_with_one_line(tiny_model_dir, tmp_path, case):
    if case == "directory":
        db, words = tmp_path / "adir", ("is a directory",)
        db.mkdir()
    elif case == "under a file":
        (tmp_path / "afile").write_text("x")
        db, words = tmp_path / "afile" / "tho.db", ("cannot",)
    elif case == "not sqlite":
        db, words = tmp_path / "notes.db", ("not a usable SQLite database",)
        db.write_bytes(b"these are my notes, not a database" * 100)
    else:
        db, words = tmp_path / "tho.db", ("schema version",)
        newer_database(db)
    before = snapshot(tmp_path)
    assert_one_clear_line(console(tiny_model_dir, db, "/giupdo\n"), *words)
    assert snapshot(tmp_path) == before


def without_root_powers() -> list[str]:
    """A prefix that runs a command as this user but without root's power to write anyone's files."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root without setpriv: cannot take away the power to write read-only files")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_read_only_database_fails_at_start_not_at_the_first_write(tiny_model_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    db = data / "tho.db"
    assert console(tiny_model_dir, db, "/caidat nhietdo 0.7\n").returncode == 0  # a working database
    db.chmod(0o444)
    before = snapshot(data)
    refused = console(tiny_model_dir, db, "/caidat nhietdo 0.9\n", prefix=without_root_powers())
    assert_one_clear_line(refused, "not readable and writable")
    assert snapshot(data) == before
    # A new file in a read-only directory is refused the same way, and nothing is created.
    db.chmod(0o644)
    data.chmod(0o555)
    try:
        refused = console(tiny_model_dir, data / "new.db", "/giupdo\n", prefix=without_root_powers())
        assert_one_clear_line(refused, "cannot create")
        assert snapshot(data) == before
        # A read-only directory also stops an existing file: SQLite writes its -wal file beside it.
        refused = console(tiny_model_dir, db, "/giupdo\n", prefix=without_root_powers())
        assert_one_clear_line(refused, "cannot write in")
    finally:
        data.chmod(0o755)


def test_a_model_that_is_not_syllable_level_is_refused_at_start(tiny_bpe_model_dir, tmp_path):
    db = tmp_path / "tho.db"
    done = console(tiny_bpe_model_dir, db, stdin="/tho Mùa thu lá vàng rơi\n")
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    assert "không viết theo từng tiếng" in done.stderr and str(tiny_bpe_model_dir) in done.stderr
    assert not db.exists()  # refused before anything was created


async def test_store_open_raises_the_one_error_type(tmp_path):
    (tmp_path / "adir").mkdir()
    with pytest.raises(StoreUnusableError, match="is a directory"):
        await Store(tmp_path / "adir").open()
    async with Store(tmp_path / "ok" / "tho.db") as store:  # a fresh file in a new directory still works
        await store.set_setting("console:local", "form", "lucbat")
    with contextlib.closing(sqlite3.connect(tmp_path / "ok" / "tho.db")) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
