"""Wiring: settings -> backend -> engine, store, core; and the model watcher.

Every entry point (console, Telegram, Discord) starts the same runtime. The
serving model is recorded in the store; `python -m bot swap --model DIR`
records a new one, and the watcher of each running bot swaps its engine to it
without dropping requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from bot import texts
from bot.config import Settings
from bot.core import Core
from bot.store import Store, StoreUnusableError
from engine.backends import create_backend
from engine.engine import PoemEngine
from engine.model_dir import ModelDirError, ModelInfo, read_model_info, require_syllable_level

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """A configuration problem the operator must fix; the message says how."""


TOKEN_HINTS = {  # Settings field -> where the operator gets the token
    "telegram_token": "token from @BotFather",
    "discord_token": "bot token from the developer portal",
}


def require_token(settings: Settings, field: str) -> str:
    """The token in `field`, or a StartupError naming its variable: the one missing-token check."""
    secret = getattr(settings, field)
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        name = Settings.model_fields[field].alias
        raise StartupError(texts.MISSING_TOKEN.format(name=name, hint=TOKEN_HINTS[field]))
    return value


@dataclass
class Runtime:
    settings: Settings
    store: Store
    engine: PoemEngine
    core: Core
    _follow_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # the watcher and an admin, one at a time
    _refused: str | None = None  # the last serving version this bot cannot serve: warned once, not every interval

    async def follow_serving_model(self) -> str | None:
        """Swap the engine to the serving model recorded in the store, if it is another one."""
        async with self._follow_lock:
            serving = await self.store.serving_model()
            current = self.engine.backend.info.path
            # A local path's resolve() is a few system calls, once per watch interval.
            if serving is None or Path(serving.path).resolve() == current:  # noqa: ASYNC240
                return None
            if self._refused != serving.version:
                log.info("serving model changed to %s (%s)", serving.version, serving.path)
            try:  # a backend reads the directory, the engine refuses a model it cannot drive; nothing loads first
                backend = create_backend(self.settings.backend, serving.path, **self.settings.backend_options())
                return await self.engine.swap(backend)
            except ModelDirError as exc:  # a directory gone, or not syllable-level: say so once, keep serving
                if self._refused != serving.version:
                    self._refused = serving.version
                    log.warning("cannot serve model %s, %s keeps serving: %s", serving.version, current.name, exc)
                return None

    async def watch_serving_model(self) -> None:
        """Follow the serving model recorded in the store (set by another process)."""
        interval = self.settings.model_watch_seconds
        if interval <= 0:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await self.follow_serving_model()
            except Exception:  # a cancellation is not an Exception: it ends the loop
                log.exception("could not follow the serving model")


def check_model_dir(path: Path) -> ModelInfo:
    """The model the bot can serve at `path`, or a StartupError that says what is wrong."""
    try:
        info = read_model_info(path)
    except ModelDirError:
        raise StartupError(texts.NO_MODEL.format(path=path)) from None
    try:
        require_syllable_level(info)
    except ModelDirError:
        raise StartupError(texts.MODEL_NOT_SYLLABLE.format(path=info.path)) from None
    return info


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, watch: bool = True) -> AsyncIterator[Runtime]:
    info = check_model_dir(settings.model)
    store = Store(settings.db)
    try:
        await store.open()  # every check first: a file that cannot be used is left as it was
    except StoreUnusableError as exc:
        raise StartupError(texts.DB_UNUSABLE.format(reason=exc)) from None
    async with store:
        backend = create_backend(settings.backend, info.path, **settings.backend_options())
        engine = await PoemEngine.create(backend)
        try:
            if await store.serving_model() is None:
                await store.record_model_version(info.version, str(info.path), status="serving")
            core = Core(
                engine=engine,
                store=store,
                default_form=settings.default_form,
                poems_per_minute=settings.poems_per_minute,
                admins=frozenset(settings.admins),
                poem_timeout_seconds=settings.poem_timeout_seconds,
                max_work=settings.max_work,
                max_in_flight=settings.max_in_flight,
                max_concurrent=settings.engine_concurrency(),
            )
            runtime = Runtime(settings, store, engine, core)
            core.on_serving_changed = runtime.follow_serving_model
            watcher = asyncio.create_task(runtime.watch_serving_model()) if watch else None
            try:
                yield runtime
            finally:
                if watcher:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
        finally:
            await engine.close()
