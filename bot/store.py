"""The bot's SQLite store: the one module that owns the schema.

Users (keyed by platform: ``tg:123``, ``dc:456``, ``console:local``), their
settings, generated poems, ratings and model versions live in one SQLite file,
accessed through :mod:`aiosqlite`.

Durability ("nothing accepted is lost on a crash or restart")
    The database runs in WAL mode with ``synchronous=FULL``: every write method
    returns only after its transaction has committed and the WAL has been
    fsync'ed.  Once an ``await store.rate(...)`` has returned, the rating
    survives the process being killed (and, given honest disks, power loss).
    WAL recovery on the next open replays anything not yet checkpointed.

Transactions and concurrency
    * Every write method is exactly one transaction, started with
      ``BEGIN IMMEDIATE``: it takes SQLite's write lock up front, so several
      processes writing the same file serialise cleanly instead of failing
      half-way with ``SQLITE_BUSY`` on a lock upgrade.  A writer that finds the
      file locked waits up to ``busy_timeout`` (10 s) before giving up.
    * One aiosqlite connection per :class:`Store`.  An :class:`asyncio.Lock`
      is held around every operation (reads included), so coroutines sharing
      one Store never interleave statements of different transactions, and a
      read never sees another coroutine's uncommitted writes.  Operations on
      one Store therefore run one at a time, in arrival order; each is short.
      In WAL mode readers in *other* connections/processes never block, and
      are never blocked by, the writer.
    * Input is validated before the transaction starts; a failing call
      (``ValueError`` for bad input, ``LookupError`` for an unknown poem or
      model version) changes nothing.  All SQL uses ``?`` parameters; user text
      is stored verbatim.

Schema versions
    ``PRAGMA user_version`` holds the schema version; ``MIGRATIONS[i]`` is the
    SQL script taking version ``i`` to ``i + 1``.  :meth:`Store.open` applies
    the missing ones in one ``BEGIN IMMEDIATE`` transaction (so two processes
    opening a fresh file at once migrate it exactly once).  A database with a
    newer version than this code knows raises :class:`SchemaVersionError`.
    To change the schema, append a script to ``MIGRATIONS``; never edit an
    applied one.

Formats
    * Timestamps are stored as ISO-8601 UTC text with microseconds and a ``Z``
      suffix, e.g. ``2025-01-02T03:04:05.123456Z`` (fixed width, so text order
      is time order), and returned as timezone-aware :class:`datetime`.
    * Settings, poem settings, poem scores and model metrics are stored as JSON
      (UTF-8, ``NaN``/``Infinity`` refused).  JSON round-trips lose Python
      types: tuples come back as lists, dict keys as strings.
    * Poem ids come from ``AUTOINCREMENT`` and are never reused, even after
      a user's data has been deleted.
    * ``secure_delete`` is on, so deleted user data is overwritten in the
      file rather than left in free pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple, Self

import aiosqlite

__all__ = [
    "MIGRATIONS",
    "MODEL_STATUSES",
    "SCHEMA_VERSION",
    "USER_KEY_RE",
    "ModelVersion",
    "NewPoem",
    "RatedPoem",
    "RatingResult",
    "SchemaVersionError",
    "StoreUnusableError",
    "Store",
    "StoredPoem",
    "validate_user_key",
]

USER_KEY_RE: Final = re.compile(r"^(tg|dc|console):[A-Za-z0-9_.\-]{1,64}$")
SETTING_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
MODEL_STATUSES: Final = frozenset({"serving", "candidate", "retired", "rejected"})
BUSY_TIMEOUT_MS: Final = 10_000
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

# MIGRATIONS[i] takes the schema from version i to i + 1.  Append only.
MIGRATIONS: Final[list[str]] = [
    # 0 -> 1: everything.
    """
    CREATE TABLE users (
        key         TEXT PRIMARY KEY,
        platform    TEXT NOT NULL CHECK (platform IN ('tg', 'dc', 'console')),
        created_at  TEXT NOT NULL,
        CHECK (substr(key, 1, length(platform) + 1) = platform || ':')
    );

    CREATE TABLE user_settings (
        user_key    TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        value_json  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (user_key, name)
    );

    CREATE TABLE poems (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        user_key       TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
        opening        TEXT NOT NULL,
        prompt         TEXT NOT NULL,
        text           TEXT NOT NULL,
        form           TEXT NOT NULL,
        stanzas        INTEGER NOT NULL,
        settings_json  TEXT NOT NULL,
        seed           INTEGER,
        model_version  TEXT NOT NULL,
        latency_ms     REAL NOT NULL,
        scores_json    TEXT NOT NULL,
        created_at     TEXT NOT NULL
    );
    CREATE INDEX poems_by_user ON poems(user_key, id);
    CREATE INDEX poems_by_model ON poems(model_version);

    CREATE TABLE ratings (
        user_key    TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
        poem_id     INTEGER NOT NULL REFERENCES poems(id) ON DELETE CASCADE,
        stars       INTEGER NOT NULL
                    CHECK (typeof(stars) = 'integer' AND stars BETWEEN 1 AND 5),
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (user_key, poem_id)
    );
    CREATE INDEX ratings_by_poem ON ratings(poem_id);

    CREATE TABLE model_versions (
        version       TEXT PRIMARY KEY,
        path          TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL,
        metrics_json  TEXT NOT NULL,
        status        TEXT NOT NULL
                      CHECK (status IN ('serving', 'candidate', 'retired', 'rejected'))
    );
    -- At most one serving model, enforced by the database itself.
    CREATE UNIQUE INDEX model_versions_one_serving
        ON model_versions(status) WHERE status = 'serving';
    """,
    # 1 -> 2: /tholai as an implicit signal.  A row says: this user asked for
    # `poem_id`'s opening again (and got `new_poem_id`) `seconds_after` seconds
    # after `poem_id` was written: a weak "not this one" (training.feedback).
    """
    CREATE TABLE regenerations (
        new_poem_id    INTEGER PRIMARY KEY REFERENCES poems(id) ON DELETE CASCADE,
        poem_id        INTEGER NOT NULL REFERENCES poems(id) ON DELETE CASCADE,
        user_key       TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
        seconds_after  REAL NOT NULL CHECK (seconds_after >= 0),
        created_at     TEXT NOT NULL
    );
    CREATE INDEX regenerations_by_poem ON regenerations(poem_id);
    """,
]
SCHEMA_VERSION: Final = len(MIGRATIONS)


class StoreUnusableError(RuntimeError):
    """The database cannot be used as it is (a directory, unreadable, read-only, not SQLite).

    Raised by :meth:`Store.open` before anything in the file was changed; the
    message says what is wrong in one line.
    """


class SchemaVersionError(StoreUnusableError):
    """The database file was written by newer code than this one."""


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class NewPoem:
    """A generated poem to store (see :meth:`Store.add_poem`)."""

    user_key: str
    opening: str
    prompt: str
    text: str
    form: str
    stanzas: int
    model_version: str
    latency_ms: float
    settings: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    scores: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredPoem:
    """A poem as read back from the store, JSON columns decoded."""

    id: int
    user_key: str
    opening: str
    prompt: str
    text: str
    form: str
    stanzas: int
    settings: dict[str, Any]
    seed: int | None
    model_version: str
    latency_ms: float
    scores: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RatingResult:
    """What :meth:`Store.rate` did.

    ``created``: the user had not rated this poem before.
    ``changed``: the stored stars differ from before (True when created).
    ``previous``: the stars before this call, ``None`` when created.
    """

    user_key: str
    poem_id: int
    stars: int
    previous: int | None
    created: bool
    changed: bool


class RatedPoem(NamedTuple):
    """A poem with its rating summary; unpacks as ``(poem, avg_stars, n_ratings)``."""

    poem: StoredPoem
    avg_stars: float
    n_ratings: int


@dataclass(frozen=True, slots=True)
class ModelVersion:
    version: str
    path: str
    status: str
    metrics: dict[str, Any]
    created_at: datetime
    updated_at: datetime


# ---------------------------------------------------------------- helpers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def user_key(platform: str, user_id: int | str) -> str:
    """The store's key of a platform user: "tg:123", "dc:456" (the one place of the format)."""
    return validate_user_key(f"{platform}:{user_id}")


def validate_user_key(key: object) -> str:
    """Return ``key`` if it is a valid user key, else raise ValueError."""
    if not isinstance(key, str) or not USER_KEY_RE.fullmatch(key):
        raise ValueError(
            f"invalid user key {key!r}: expected 'tg:<id>', 'dc:<id>' or 'console:<name>'"
            " (id: 1-64 of A-Z a-z 0-9 _ . -)"
        )
    return key


def _validate_setting_name(name: object) -> str:
    if not isinstance(name, str) or not SETTING_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid setting name {name!r}: 1-64 chars of A-Z a-z 0-9 _ . -, not starting with a digit")
    return name


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"{what} is not JSON-serialisable: {e}") from e


def _json_object(value: object, what: str) -> str:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping, got {type(value).__name__}")
    return _to_json(dict(value), what)


def _validate_stars(stars: object) -> int:
    # bool is an int subclass; True is not a rating.
    if type(stars) is not int or not 1 <= stars <= 5:
        raise ValueError(f"stars must be an integer from 1 to 5, got {stars!r}")
    return stars


def _validate_poem_id(poem_id: object) -> int:
    if type(poem_id) is not int:
        raise ValueError(f"poem id must be an int, got {poem_id!r}")
    return poem_id


def _validate_str(value: object, what: str, *, non_empty: bool = False, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, got {type(value).__name__}")
    if non_empty and not value:
        raise ValueError(f"{what} must not be empty")
    if max_len is not None and len(value) > max_len:
        raise ValueError(f"{what} is longer than {max_len} characters")
    return value


def _validate_model_status(status: object) -> str:
    if status not in MODEL_STATUSES:
        raise ValueError(f"model status must be one of {sorted(MODEL_STATUSES)}, got {status!r}")
    return status  # type: ignore[return-value]


def _validate_limit(value: object, what: str, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return value


def _split_sql(script: str) -> list[str]:
    """Split an SQL script into complete statements (triggers and quoted ';' safe).

    ``executescript`` would COMMIT the surrounding transaction, so migrations
    run statement by statement instead.
    """
    statements: list[str] = []
    buf = ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if not _is_blank_sql(buf):
                statements.append(buf.strip())
            buf = ""
    if not _is_blank_sql(buf):
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:80]!r}")
    return statements


class _Done(NamedTuple):
    rowcount: int
    lastrowid: int | None


async def _exec(db: aiosqlite.Connection, sql: str, params: Any = ()) -> _Done:
    """Run one statement and close its cursor."""
    async with db.execute(sql, params) as cur:
        return _Done(cur.rowcount, cur.lastrowid)


async def _settle(db: aiosqlite.Connection, sql: str) -> None:
    """Run BEGIN/COMMIT/ROLLBACK to completion even if the caller is cancelled."""
    fut = asyncio.ensure_future(_exec(db, sql))
    try:
        await asyncio.shield(fut)
    except asyncio.CancelledError:
        await fut
        raise


async def _begin(db: aiosqlite.Connection, sql: str) -> None:
    """Start a transaction; if cancelled while waiting, don't leave it open."""
    try:
        await _settle(db, sql)
    except asyncio.CancelledError:
        if db.in_transaction:
            await _settle(db, "ROLLBACK")
        raise


def _is_blank_sql(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.rstrip(";").splitlines())


_POEM_COLUMNS: Final = (
    "p.id, p.user_key, p.opening, p.prompt, p.text, p.form, p.stanzas, p.settings_json,"
    " p.seed, p.model_version, p.latency_ms, p.scores_json, p.created_at"
)


def _poem_from_row(row: sqlite3.Row) -> StoredPoem:
    return StoredPoem(
        id=row["id"],
        user_key=row["user_key"],
        opening=row["opening"],
        prompt=row["prompt"],
        text=row["text"],
        form=row["form"],
        stanzas=row["stanzas"],
        settings=json.loads(row["settings_json"]),
        seed=row["seed"],
        model_version=row["model_version"],
        latency_ms=row["latency_ms"],
        scores=json.loads(row["scores_json"]),
        created_at=_parse_ts(row["created_at"]),
    )


def _model_from_row(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        version=row["version"],
        path=row["path"],
        status=row["status"],
        metrics=json.loads(row["metrics_json"]),
        created_at=_parse_ts(row["created_at"]),
        updated_at=_parse_ts(row["updated_at"]),
    )


# ---------------------------------------------------------------- the store


class Store:
    """Async access to the bot's SQLite file.  See the module docstring.

    Use ``async with Store(path) as store:`` or ``await store.open()`` /
    ``await store.close()``.  Not shareable across event loops.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._target = str(path)
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the file (creating it and its parent directories) and migrate it."""
        async with self._lock:
            if self._db is None:
                self._db = await self._connect()

    def _preflight(self) -> None:
        """Check the file before touching it: nothing is created or changed unless all is well.

        Only the missing parent directories of a new file are created.
        """
        path = self.path
        assert path is not None
        if path.is_dir():
            raise StoreUnusableError(f"{path} is a directory, not a database file")
        if path.exists():
            if not path.is_file():
                raise StoreUnusableError(f"{path} is not a regular file")
            if not os.access(path, os.R_OK | os.W_OK):
                raise StoreUnusableError(f"{path} is not readable and writable by this user")
            if not os.access(path.parent, os.W_OK | os.X_OK):
                raise StoreUnusableError(f"cannot write in {path.parent} (SQLite keeps its -wal file there)")
            try:  # read the schema version without changing anything (a read-only connection)
                with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as ro:
                    version = int(ro.execute("PRAGMA user_version").fetchone()[0])
                    ro.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            except sqlite3.Error as e:
                raise StoreUnusableError(f"{path} is not a usable SQLite database ({e})") from None
            if version > SCHEMA_VERSION:
                raise self._too_new(version)
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnusableError(f"cannot create the directory for {path}: {e.strerror}") from None
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreUnusableError(f"cannot create {path}: {path.parent} is not a writable directory")

    async def _connect(self) -> aiosqlite.Connection:
        if self.path is not None:
            self._preflight()
        db = await aiosqlite.connect(self._target, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            db.row_factory = sqlite3.Row
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            await db.execute("PRAGMA foreign_keys = ON")
            await self._enable_wal(db)
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA secure_delete = ON")
            await self._migrate(db)
            await self._probe_write(db)
        except sqlite3.Error as e:
            await db.close()
            if getattr(e, "_in_migration", False):
                raise
            raise StoreUnusableError(f"{self._target} cannot be used: {e}") from None
        except BaseException:
            await db.close()
            raise
        return db

    async def _enable_wal(self, db: aiosqlite.Connection) -> None:
        # Switching a fresh file to WAL needs an exclusive lock; when several
        # processes open the same new file at once the switch can report
        # "database is locked" without consulting the busy handler, so retry.
        deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) and "busy" not in str(e):
                    raise
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.01)
        mode = next(iter(rows))[0]
        if mode != "wal" and not (self.path is None and mode == "memory"):
            raise RuntimeError(f"could not switch {self._target} to WAL mode (journal_mode={mode})")

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        version = await self._user_version(db)
        if version > SCHEMA_VERSION:
            raise self._too_new(version)
        if version == SCHEMA_VERSION:
            return
        await db.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the write lock: another process may have migrated.
            version = await self._user_version(db)
            if version > SCHEMA_VERSION:
                raise self._too_new(version)
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _split_sql(MIGRATIONS[target - 1]):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {int(target):d}")
            await db.execute("COMMIT")
        except sqlite3.Error as e:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            e._in_migration = True  # a bug in a migration, not a file the operator must fix
            raise
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise

    @staticmethod
    async def _probe_write(db: aiosqlite.Connection) -> None:
        """Fail now, not at the first user's rating, if the file cannot be written (rolled back)."""
        version = await Store._user_version(db)
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute(f"PRAGMA user_version = {version:d}")
        finally:
            await db.execute("ROLLBACK")

    @staticmethod
    async def _user_version(db: aiosqlite.Connection) -> int:
        rows = await db.execute_fetchall("PRAGMA user_version")
        return int(next(iter(rows))[0])

    def _too_new(self, version: int) -> SchemaVersionError:
        return SchemaVersionError(
            f"database {self._target} has schema version {version}, but this code only knows "
            f"versions up to {SCHEMA_VERSION}; it was written by a newer bot. Upgrade the code "
            "or point the bot at another file (the file was not changed)."
        )

    async def close(self) -> None:
        """Wait for the running operation, then close.  Safe to call twice."""
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    # ------------------------------------------------------------ transactions

    def _require_open(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("Store is not open; use `async with Store(path)` or `await store.open()`")
        return self._db

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, exclusively, outside any transaction (for reads)."""
        async with self._lock:
            db = self._require_open()
            if db.in_transaction:  # only after a task was cancelled twice mid-rollback
                await _settle(db, "ROLLBACK")
            yield db

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read transaction: a consistent snapshot across several SELECTs."""
        async with self._conn() as db:
            await _begin(db, "BEGIN")
            try:
                yield db
            finally:
                await _settle(db, "ROLLBACK")

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed (durably) on success, rolled back on error.

        BEGIN, COMMIT and ROLLBACK are finished even if the calling task is
        cancelled meanwhile, so the lock is never released with a transaction
        open.  A task cancelled while its COMMIT runs gets CancelledError, but
        the write has been committed.
        """
        async with self._conn() as db:
            await _begin(db, "BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await _settle(db, "ROLLBACK")
                raise
            try:
                await _settle(db, "COMMIT")
            except asyncio.CancelledError:
                raise  # _settle finished the COMMIT
            except BaseException:
                if db.in_transaction:
                    await _settle(db, "ROLLBACK")
                raise

    @staticmethod
    async def _ensure_user(db: aiosqlite.Connection, key: str, now: str) -> None:
        await _exec(
            db,
            "INSERT INTO users (key, platform, created_at) VALUES (?, ?, ?) ON CONFLICT(key) DO NOTHING",
            (key, key.split(":", 1)[0], now),
        )

    # ------------------------------------------------------------ users and settings

    async def get_settings(self, key: str) -> dict[str, Any]:
        """The user's settings, JSON-decoded; ``{}`` for an unknown user."""
        validate_user_key(key)
        async with self._conn() as db:
            rows = await db.execute_fetchall(
                "SELECT name, value_json FROM user_settings WHERE user_key = ? ORDER BY name", (key,)
            )
        return {row["name"]: json.loads(row["value_json"]) for row in rows}

    async def set_setting(self, key: str, name: str, value: Any) -> None:
        """Set one setting (any JSON value), creating the user if new; on any error nothing changes."""
        validate_user_key(key)
        _validate_setting_name(name)
        value_json = _to_json(value, f"setting {name!r}")
        now = _now()
        async with self._write() as db:
            await self._ensure_user(db, key, now)
            await _exec(
                db,
                "INSERT INTO user_settings (user_key, name, value_json, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(user_key, name) DO UPDATE"
                " SET value_json = excluded.value_json, updated_at = excluded.updated_at",
                (key, name, value_json, now),
            )

    async def reset_settings(self, key: str, names: list[str] | None = None) -> int:
        """Delete all (or the named) settings of a user; returns how many were deleted."""
        validate_user_key(key)
        checked = None if names is None else [_validate_setting_name(n) for n in names]
        async with self._write() as db:
            if checked is None:
                cur = await _exec(db, "DELETE FROM user_settings WHERE user_key = ?", (key,))
                return cur.rowcount
            total = 0
            for name in checked:
                cur = await _exec(db, "DELETE FROM user_settings WHERE user_key = ? AND name = ?", (key, name))
                total += cur.rowcount
            return total

    # ------------------------------------------------------------ poems

    async def add_poem(self, poem: NewPoem) -> int:
        """Store a generated poem; returns its id (never reused)."""
        if not isinstance(poem, NewPoem):
            raise ValueError(f"add_poem takes a NewPoem, got {type(poem).__name__}")
        validate_user_key(poem.user_key)
        for what in ("opening", "prompt", "text", "form"):
            _validate_str(getattr(poem, what), what)
        _validate_str(poem.model_version, "model_version", non_empty=True, max_len=200)
        if type(poem.stanzas) is not int or poem.stanzas < 0:
            raise ValueError(f"stanzas must be an int >= 0, got {poem.stanzas!r}")
        if poem.seed is not None and (type(poem.seed) is not int or not _INT64_MIN <= poem.seed <= _INT64_MAX):
            raise ValueError(f"seed must be None or a signed 64-bit int, got {poem.seed!r}")
        latency = poem.latency_ms
        if (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
        ):
            raise ValueError(f"latency_ms must be a finite number >= 0, got {latency!r}")
        settings_json = _json_object(poem.settings, "poem settings")
        scores_json = _json_object(poem.scores, "poem scores")
        now = _now()
        async with self._write() as db:
            await self._ensure_user(db, poem.user_key, now)
            cur = await _exec(
                db,
                "INSERT INTO poems (user_key, opening, prompt, text, form, stanzas, settings_json,"
                " seed, model_version, latency_ms, scores_json, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    poem.user_key,
                    poem.opening,
                    poem.prompt,
                    poem.text,
                    poem.form,
                    poem.stanzas,
                    settings_json,
                    poem.seed,
                    poem.model_version,
                    float(latency),
                    scores_json,
                    now,
                ),
            )
            poem_id = cur.lastrowid
        assert poem_id is not None
        return poem_id

    async def get_poem(self, poem_id: int) -> StoredPoem | None:
        _validate_poem_id(poem_id)
        async with self._conn() as db:
            rows = list(await db.execute_fetchall(f"SELECT {_POEM_COLUMNS} FROM poems p WHERE p.id = ?", (poem_id,)))
        return _poem_from_row(rows[0]) if rows else None

    async def last_poem(self, user_key: str) -> StoredPoem | None:
        """The user's most recent poem, if any."""
        validate_user_key(user_key)
        async with self._conn() as db:
            rows = list(
                await db.execute_fetchall(
                    f"SELECT {_POEM_COLUMNS} FROM poems p WHERE p.user_key = ? ORDER BY p.id DESC LIMIT 1",
                    (user_key,),
                )
            )
        return _poem_from_row(rows[0]) if rows else None

    # ------------------------------------------------------------ ratings

    async def rate(self, user_key: str, poem_id: int, stars: int) -> RatingResult:
        """Rate a poem 1-5 stars, or change the user's earlier rating of it.

        Raises ValueError for stars that are not an int in 1..5 and LookupError
        for an unknown poem; either way nothing changes.
        """
        validate_user_key(user_key)
        _validate_poem_id(poem_id)
        _validate_stars(stars)
        now = _now()
        async with self._write() as db:
            found = list(await db.execute_fetchall("SELECT 1 FROM poems WHERE id = ?", (poem_id,)))
            if not found:
                raise LookupError(f"no poem with id {poem_id}")
            await self._ensure_user(db, user_key, now)
            rows = list(
                await db.execute_fetchall(
                    "SELECT stars FROM ratings WHERE user_key = ? AND poem_id = ?", (user_key, poem_id)
                )
            )
            if not rows:
                await _exec(
                    db,
                    "INSERT INTO ratings (user_key, poem_id, stars, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (user_key, poem_id, stars, now, now),
                )
                return RatingResult(user_key, poem_id, stars, None, created=True, changed=True)
            previous = int(rows[0]["stars"])
            if previous != stars:
                await _exec(
                    db,
                    "UPDATE ratings SET stars = ?, updated_at = ? WHERE user_key = ? AND poem_id = ?",
                    (stars, now, user_key, poem_id),
                )
            return RatingResult(user_key, poem_id, stars, previous, created=False, changed=previous != stars)

    async def public_top_poems(self, limit: int = 5, min_raters: int = 2) -> list[RatedPoem]:
        """Best-rated poems that may be shown to everyone (/top).

        A poem qualifies when at least ``min_raters`` users other than its
        author rated it (so it was already shown somewhere others could see
        it) and its author has not opted out (setting ``public`` = false).
        The author's own stars count neither in the average nor in the number.
        """
        _validate_limit(limit, "limit", 0)
        _validate_limit(min_raters, "min_raters", 1)
        async with self._conn() as db:
            rows = await db.execute_fetchall(
                f"SELECT {_POEM_COLUMNS}, s.avg_stars, s.n_ratings FROM poems p JOIN ("
                "   SELECT r.poem_id, AVG(r.stars) AS avg_stars, COUNT(*) AS n_ratings"
                "   FROM ratings r JOIN poems q ON q.id = r.poem_id"
                "   WHERE r.user_key != q.user_key GROUP BY r.poem_id HAVING COUNT(*) >= ?"
                " ) s ON s.poem_id = p.id"
                " WHERE NOT EXISTS (SELECT 1 FROM user_settings u"
                "   WHERE u.user_key = p.user_key AND u.name = 'public' AND u.value_json = 'false')"
                " ORDER BY s.avg_stars DESC, s.n_ratings DESC, p.id DESC LIMIT ?",
                (min_raters, limit),
            )
        return [RatedPoem(_poem_from_row(r), float(r["avg_stars"]), int(r["n_ratings"])) for r in rows]

    async def activity_since(self, since: datetime) -> dict[str, int]:
        """Poems written, ratings given or changed, and users who did either, since ``since`` (aware)."""
        if not isinstance(since, datetime) or since.tzinfo is None:
            raise ValueError(f"since must be a timezone-aware datetime, got {since!r}")
        ts = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        async with self._read() as db:
            poems = list(await db.execute_fetchall("SELECT COUNT(*) FROM poems WHERE created_at >= ?", (ts,)))
            ratings = list(await db.execute_fetchall("SELECT COUNT(*) FROM ratings WHERE updated_at >= ?", (ts,)))
            users = list(
                await db.execute_fetchall(
                    "SELECT COUNT(*) FROM (SELECT user_key FROM poems WHERE created_at >= ?"
                    " UNION SELECT user_key FROM ratings WHERE updated_at >= ?)",
                    (ts, ts),
                )
            )
        return {"poems": int(poems[0][0]), "ratings": int(ratings[0][0]), "users": int(users[0][0])}

    async def record_regeneration(self, user_key: str, poem_id: int, new_poem_id: int) -> float:
        """Record that ``user_key`` asked again (/tholai) for ``poem_id``'s opening and
        got ``new_poem_id``; returns the seconds since ``poem_id`` was written.
        LookupError for an unknown poem (nothing changes)."""
        validate_user_key(user_key)
        _validate_poem_id(poem_id)
        _validate_poem_id(new_poem_id)
        now = _now()
        async with self._write() as db:
            rows = list(await db.execute_fetchall("SELECT created_at FROM poems WHERE id = ?", (poem_id,)))
            if not rows or not list(await db.execute_fetchall("SELECT 1 FROM poems WHERE id = ?", (new_poem_id,))):
                raise LookupError(f"no poem with id {poem_id} or {new_poem_id}")
            seconds = max(0.0, (_parse_ts(now) - _parse_ts(rows[0]["created_at"])).total_seconds())
            await self._ensure_user(db, user_key, now)
            await _exec(
                db,
                "INSERT INTO regenerations (new_poem_id, poem_id, user_key, seconds_after, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(new_poem_id) DO NOTHING",
                (new_poem_id, poem_id, user_key, seconds, now),
            )
            return seconds

    # ------------------------------------------------------------ privacy

    async def delete_user_data(self, user_key: str) -> dict[str, int]:
        """Delete everything about a user, in one transaction; returns row counts.

        Keys: ``settings``, ``ratings`` (ratings the user gave), ``poems``
        (their poems), ``ratings_on_their_poems`` (others' ratings of those
        poems), ``users`` (0 or 1).  Other users' data is untouched.
        """
        validate_user_key(user_key)
        async with self._write() as db:
            settings = await _exec(db, "DELETE FROM user_settings WHERE user_key = ?", (user_key,))
            own = await _exec(db, "DELETE FROM ratings WHERE user_key = ?", (user_key,))
            on_poems = await _exec(
                db, "DELETE FROM ratings WHERE poem_id IN (SELECT id FROM poems WHERE user_key = ?)", (user_key,)
            )
            poems = await _exec(db, "DELETE FROM poems WHERE user_key = ?", (user_key,))
            users = await _exec(db, "DELETE FROM users WHERE key = ?", (user_key,))
            return {
                "settings": settings.rowcount,
                "ratings": own.rowcount,
                "poems": poems.rowcount,
                "ratings_on_their_poems": on_poems.rowcount,
                "users": users.rowcount,
            }

    # ------------------------------------------------------------ model versions

    async def record_model_version(
        self,
        version: str,
        path: str | Path,
        metrics: Mapping[str, Any] | None = None,
        status: str = "candidate",
    ) -> ModelVersion:
        """Insert or update a model version.  ``status='serving'`` retires the
        previously serving one in the same transaction."""
        _validate_str(version, "version", non_empty=True, max_len=200)
        path_str = _validate_str(str(path) if isinstance(path, Path) else path, "path")
        metrics_json = _json_object({} if metrics is None else metrics, "model metrics")
        _validate_model_status(status)
        now = _now()
        async with self._write() as db:
            if status == "serving":
                await _exec(
                    db,
                    "UPDATE model_versions SET status = 'retired', updated_at = ?"
                    " WHERE status = 'serving' AND version != ?",
                    (now, version),
                )
            await _exec(
                db,
                "INSERT INTO model_versions (version, path, created_at, updated_at, metrics_json, status)"
                " VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(version) DO UPDATE SET path = excluded.path,"
                " updated_at = excluded.updated_at, metrics_json = excluded.metrics_json,"
                " status = excluded.status",
                (version, path_str, now, now, metrics_json, status),
            )
            rows = list(await db.execute_fetchall("SELECT * FROM model_versions WHERE version = ?", (version,)))
            return _model_from_row(rows[0])

    async def set_serving_model(self, version: str) -> str | None:
        """Make ``version`` the one serving model; the previous one becomes
        'retired'.  Returns the previous serving version (None if none).
        LookupError for an unknown version (nothing changes)."""
        _validate_str(version, "version", non_empty=True)
        now = _now()
        async with self._write() as db:
            found = list(await db.execute_fetchall("SELECT 1 FROM model_versions WHERE version = ?", (version,)))
            if not found:
                raise LookupError(f"unknown model version {version!r}; record_model_version() it first")
            prev = list(await db.execute_fetchall("SELECT version FROM model_versions WHERE status = 'serving'"))
            previous = prev[0]["version"] if prev else None
            if previous == version:
                return previous
            await _exec(
                db, "UPDATE model_versions SET status = 'retired', updated_at = ? WHERE status = 'serving'", (now,)
            )
            await _exec(
                db, "UPDATE model_versions SET status = 'serving', updated_at = ? WHERE version = ?", (now, version)
            )
            return previous

    async def serving_model(self) -> ModelVersion | None:
        async with self._conn() as db:
            rows = list(await db.execute_fetchall("SELECT * FROM model_versions WHERE status = 'serving'"))
        return _model_from_row(rows[0]) if rows else None

    async def get_model_version(self, version: str) -> ModelVersion | None:
        _validate_str(version, "version")
        async with self._conn() as db:
            rows = list(await db.execute_fetchall("SELECT * FROM model_versions WHERE version = ?", (version,)))
        return _model_from_row(rows[0]) if rows else None

    async def list_model_versions(self) -> list[ModelVersion]:
        """All recorded model versions, oldest first."""
        async with self._conn() as db:
            rows = await db.execute_fetchall("SELECT * FROM model_versions ORDER BY created_at, version")
        return [_model_from_row(r) for r in rows]
