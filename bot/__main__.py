"""Thơ bot entry points.

    python -m bot console   [--model DIR] [--db FILE]   chat in the terminal (no token needed)
    python -m bot telegram  [--model DIR] [--db FILE]   needs TELEGRAM_TOKEN
    python -m bot discord   [--model DIR] [--db FILE]   needs DISCORD_TOKEN
    python -m bot all       [--model DIR] [--db FILE]   Telegram and Discord in one process
    python -m bot swap --model DIR [--db FILE]          make DIR the serving model of every running bot

Configuration comes from the environment or .env (see README); flags override it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from pydantic import ValidationError

from bot import texts
from bot.config import Settings
from bot.logsafe import setup_logging, update_secrets
from bot.runtime import StartupError, open_runtime, require_token
from bot.store import StoreUnusableError

log = logging.getLogger("bot")
SECRET_VARIABLES = ("TELEGRAM_TOKEN", "DISCORD_TOKEN", "TELEGRAM_WEBHOOK_SECRET")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Thơ bot")
    parser.add_argument("mode", choices=("console", "telegram", "discord", "all", "swap"))
    parser.add_argument("--model", help="model directory (overrides THO_MODEL)")
    parser.add_argument("--db", help="SQLite database file (overrides THO_DB)")
    parser.add_argument("--backend", help="hf | vllm | remote (overrides THO_BACKEND)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (same as THO_LOG_LEVEL=DEBUG)")
    return parser.parse_args(argv)


def load_settings(args: argparse.Namespace) -> Settings:
    overrides = {
        k: v
        for k, v in (("THO_MODEL", args.model), ("THO_DB", args.db), ("THO_BACKEND", args.backend))
        if v is not None
    }
    return Settings(**overrides)


def require_tokens(settings: Settings, mode: str) -> None:
    needed = {
        "telegram": ["telegram_token"],
        "discord": ["discord_token"],
        "all": ["telegram_token", "discord_token"],
    }.get(mode, [])
    for field in needed:
        require_token(settings, field)


class Terminated(Exception):
    """SIGTERM asked the bot to stop (docker stop, systemd, kill)."""


def stop_on_sigterm(terminated: list[bool]) -> None:
    """SIGTERM stops the bot as Ctrl-C does: the main task is cancelled, so the updaters stop, poems in
    flight end, the engine and the store close in order. Without this, docker stop and systemd killed
    it on the spot (Python's default action for SIGTERM)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        # Once stopping (an earlier SIGTERM or Ctrl-C), a second cancel would cut the clean shutdown short;
        # a shutdown that hangs is ended by the supervisor's SIGKILL (docker, systemd), not by us.
        if terminated or task.done() or task.cancelling():
            return
        log.info("SIGTERM: stopping")
        terminated.append(True)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)


async def main(args: argparse.Namespace, settings: Settings) -> None:
    terminated: list[bool] = []
    stop_on_sigterm(terminated)
    try:
        await _main(args, settings)
    except asyncio.CancelledError:
        if terminated:
            raise Terminated from None
        raise


async def _main(args: argparse.Namespace, settings: Settings) -> None:
    require_tokens(settings, args.mode)
    if args.mode == "swap":
        if not args.model:
            raise StartupError("swap needs --model DIR")
        from bot.runtime import check_model_dir
        from bot.store import Store

        info = check_model_dir(settings.model)
        async with Store(settings.db) as store:
            await store.record_model_version(info.version, str(info.path), status="serving")
        print(
            f"serving model is now {info.version} ({info.path}); running bots switch within "
            f"{settings.model_watch_seconds:g} s"
        )
        return
    async with open_runtime(settings, watch=args.mode != "console") as runtime:
        if args.mode == "console":
            from bot.console import run_console

            await run_console(runtime.core, stream=runtime.settings.stream, pictures=runtime.settings.console_pictures)
            return
        runners = []
        if args.mode in ("telegram", "all"):
            from bot.telegram import serve as serve_telegram

            runners.append(serve_telegram(runtime))
        if args.mode in ("discord", "all"):
            from bot.discord import serve as serve_discord

            runners.append(serve_discord(runtime))
        await asyncio.gather(*runners)


def log_level(args: argparse.Namespace, settings: Settings | None) -> int:
    if args.verbose:
        return logging.DEBUG
    if settings is not None and settings.log_level:
        return getattr(logging, settings.log_level)
    return logging.WARNING if args.mode == "console" else logging.INFO


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Logging first, through the redactor, with the secrets the environment holds; .env's join below.
    redactor = setup_logging(log_level(args, None), [os.environ.get(name) for name in SECRET_VARIABLES])
    try:
        settings = load_settings(args)
    except ValidationError as exc:
        # The messages only: pydantic's own text quotes the input, every variable's value with it.
        print(redactor("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())), file=sys.stderr)
        return 2
    update_secrets(redactor, settings.secrets())
    logging.getLogger().setLevel(log_level(args, settings))
    try:
        asyncio.run(main(args, settings))
    except StartupError as exc:
        print(redactor(str(exc)), file=sys.stderr)
        return 2
    except StoreUnusableError as exc:  # python -m bot swap opens the store itself
        print(redactor(texts.DB_UNUSABLE.format(reason=exc)), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:
        log.info("stopped")
        return 0
    except Exception:  # never Python's own traceback printer: it would bypass the redactor
        log.critical("the bot stopped on an unexpected error", exc_info=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run())
