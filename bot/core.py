"""The platform-agnostic bot: commands, input checks, per-user settings, quotas.

Adapters (console, Telegram, Discord) call `Core.command` for a typed command
and `Core.action` for a button press, and render the `Reply` they get back:
text plus rows of buttons, each button carrying an action string that comes
back to `Core.action` when pressed. Nothing here knows about a platform.

Bad input gets a clear Vietnamese message and changes nothing: every check
runs before the store is touched.

Naming: a method that runs a command has the command's name as users type it
(`tho`, `caidat`, `giaithich`; `command()` dispatches by that name), every
other name is English (`rate`, `picture`, `delete_confirmed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import unicodedata
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot import actions, texts
from bot.picture import percent, render_explanation, render_poem
from bot.store import NewPoem, Store
from engine.engine import LinesCallback, PoemEngine
from engine.explain import Explainer, Explanation
from engine.forms import FORM_IDS, FORMS, MAX_STANZAS, MIN_STANZAS, RHYME_SCHEMES
from engine.model_dir import ModelDirError, read_model_info, require_syllable_level
from engine.request import InvalidRequest, PoemRequest
from engine.settings import SPECS, SamplingSettings, SettingError

log = logging.getLogger(__name__)

# What users type in /caidat -> the setting's internal name.
SETTING_NAMES = {
    "nhietdo": "temperature",
    "topk": "top_k",
    "topp": "top_p",
    "lapphat": "repetition_penalty",
    "ngram": "no_repeat_ngram_size",
    "chienluoc": "strategy",
    "sochum": "num_beams",
    "ungvien": "candidates",
    "hatgiong": "seed",
    "the": "form",
    "van": "scheme",
    "kho": "stanzas",
    "congkhai": "public",
    "kyten": "signature",
}
SETTING_ORDER = tuple(SETTING_NAMES.values())
STRATEGY_ALIASES = {"ngaunhien": "sample", "thamlam": "greedy", "chum": "beam"}
YES_NO_WORDS = {"co": True, "khong": False, "bat": True, "tat": False, "1": True, "0": False}
RESET_WORD = "macdinh"
TEMPERATURE_PRESETS = {"ondinh": 0.6, "canbang": 0.9, "baybong": 1.2}
# A value /caidat suggests when a user gives none (each one is accepted; tests/test_core_limits.py checks).
SAMPLING_EXAMPLES = {
    "temperature": "0.9",
    "top_k": "50",
    "top_p": "0.9",
    "repetition_penalty": "1.1",
    "no_repeat_ngram_size": "3",
    "strategy": "ngaunhien",
    "num_beams": "4",
    "candidates": "2",
    "seed": "42",
}
RATE_WINDOW_SECONDS = 60.0
TOP_LIMIT = 5
TOP_MIN_RATERS = 2  # /top shows a poem only once this many users other than its author rated it
ECHO_CHARS = 30  # at most this much of a refused value is repeated back to the user
# The commands, by the names users type; each is the Core method of that name. One list for every adapter.
POEM_COMMANDS = ("tho", "tholai")  # they write a poem (adapters show it being written)
USER_COMMANDS = ("start", *texts.COMMAND_DESCRIPTIONS)  # /start is Telegram's first message, not in the menu
ADMIN_COMMANDS = ("trangthai", "mohinh")
COMMAND_ALIASES = {"help": "giupdo"}
PROMOTE_WORD, ROLLBACK_WORD = "chon", "quaylai"
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def clean_input(text: str) -> str:
    """What a user typed, with terminal escapes removed and control characters turned into spaces.

    The engine drops control characters, which would glue "Mùa\\x00thu" into one word and leave
    "[31m" of an ANSI colour code in the poem; here they become word breaks first.
    """
    text = _ANSI.sub(" ", text or "")
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


def fit(text: str, limit: int) -> str:
    """A reply cut to a platform's length limit, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _echo(value: str) -> str:
    value = value.strip()
    return value if len(value) <= ECHO_CHARS else value[: ECHO_CHARS - 1] + "…"


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # comes back to Core.action, e.g. "rate:12:5"


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    poem_id: int | None = None
    image: bytes | None = None  # a PNG to send, the text as its caption
    error: bool = False  # the user did something we refused (nothing changed)
    failed: bool = False  # our fault: adapters report it to the admins
    answer: str | None = None  # short notice for a button press (Telegram's answerCallbackQuery)


def _fold(text: str) -> str:
    """Lowercase ASCII skeleton of a word: "Lục bát" -> "lucbat"."""
    text = unicodedata.normalize("NFD", text.strip().lower().replace("đ", "d"))
    return "".join(ch for ch in text if not unicodedata.combining(ch) and not ch.isspace())


def setting_key(name: str) -> str | None:
    """The internal name for what a user typed ("nhietdo" or "temperature"), or None."""
    folded = _fold(name)
    return SETTING_NAMES.get(folded, folded if folded in SETTING_ORDER else None)


def _parse_form(raw: str) -> str:
    folded = _fold(raw)
    folded = folded if folded in FORM_IDS else f"{folded}chu" if f"{folded}chu" in FORM_IDS else folded
    if folded not in FORM_IDS:
        raise ValueError(raw)
    return folded


def _parse_scheme(raw: str) -> str:
    """ "cheo", "chéo", "vần chéo" -> "cheo"."""
    folded = _fold(raw)
    folded = folded[3:] if folded.startswith("van") else folded
    if folded not in RHYME_SCHEMES:
        raise ValueError(raw)
    return folded


def _parse_stanzas(raw: str) -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 2) or not MIN_STANZAS <= int(text) <= MAX_STANZAS:
        raise ValueError(raw)
    return int(text)


def _parse_yes_no(raw: str) -> bool:
    value = YES_NO_WORDS.get(_fold(raw))
    if value is None:
        raise ValueError(raw)
    return value


@dataclass(frozen=True)
class BotSetting:
    """A setting the bot keeps itself (the sampling ones live in engine.settings.SPECS)."""

    parse: Callable[[str], object]  # raises ValueError
    valid: str  # what /caidat says is valid
    example: str  # a valid value, suggested when none was given
    show: Callable[[object], str] = str
    default: object = None  # None: chosen elsewhere (the form by the opening's length)


BOT_SETTINGS: dict[str, BotSetting] = {
    "form": BotSetting(_parse_form, ", ".join(FORM_IDS), "lucbat", texts.form_title),
    "scheme": BotSetting(_parse_scheme, ", ".join(RHYME_SCHEMES), "cheo", texts.scheme_title),
    "stanzas": BotSetting(_parse_stanzas, f"{MIN_STANZAS}..{MAX_STANZAS}", "2", default=MIN_STANZAS),
    "public": BotSetting(_parse_yes_no, "co, khong", "khong", lambda v: texts.YES_NO[bool(v)], default=True),
    # The user's display name under their poem pictures: only when they said so.
    "signature": BotSetting(_parse_yes_no, "co, khong", "co", lambda v: texts.YES_NO[bool(v)], default=False),
}


def parse_setting(name: str, raw: str) -> tuple[str, object]:
    """A user's (name, value) -> (internal name, checked value), or SettingError/KeyError."""
    key = setting_key(name)
    if key is None:
        raise KeyError(name)
    if key in BOT_SETTINGS:
        return key, BOT_SETTINGS[key].parse(raw)
    if key == "strategy":
        raw = STRATEGY_ALIASES.get(_fold(raw), _fold(raw))
    elif len(raw.strip()) > ECHO_CHARS:  # no number needs more; float() of a huge string is slow
        raise SettingError(SPECS[key], raw)
    return key, SPECS[key].parse(raw)


def valid_values(key: str) -> str:
    if key in BOT_SETTINGS:
        return BOT_SETTINGS[key].valid
    if key == "strategy":
        return ", ".join(STRATEGY_ALIASES)
    spec = SPECS[key]
    if spec.kind is int:  # whole numbers in full: 2147483647, not 2.14748e+09
        return f"{int(spec.low)}..{int(spec.high)}"
    return spec.describe()


def example_value(key: str) -> str:
    return BOT_SETTINGS[key].example if key in BOT_SETTINGS else SAMPLING_EXAMPLES[key]


def show_value(key: str, value: object) -> str:
    """A stored setting as users read it (never an internal English word)."""
    if key in BOT_SETTINGS:
        return BOT_SETTINGS[key].show(value)
    if key == "strategy":
        return texts.STRATEGY_LABELS.get(str(value), str(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def work_of(settings: SamplingSettings, stanzas: int) -> tuple[int, int, int]:
    """(candidates, beams, stanzas) that one poem with these resolved settings decodes."""
    candidates = 1 if settings.strategy == "greedy" else int(settings.candidates or 1)
    beams = int(settings.num_beams or 1) if settings.strategy == "beam" else 1
    return candidates, beams, stanzas


class RateLimiter:
    """At most `limit` accepted requests per user in any RATE_WINDOW_SECONDS.

    Bounded: a user's entry keeps at most `limit` times and is forgotten once
    they all left the window (a sweep at most once per window drops them).
    """

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.clock = clock
        self._times: dict[str, deque[float]] = {}
        self._next_sweep = float("-inf")

    def __len__(self) -> int:
        """Users currently remembered."""
        return len(self._times)

    def retry_after(self, user: str) -> float:
        """Seconds until the user may ask again (0: now)."""
        now = self.clock()
        self._sweep(now)
        times = self._times.get(user)
        while times and now - times[0] >= RATE_WINDOW_SECONDS:
            times.popleft()
        if not times:
            self._times.pop(user, None)
            return 0.0
        return 0.0 if len(times) < self.limit else RATE_WINDOW_SECONDS - (now - times[0])

    def record(self, user: str) -> None:
        self._times.setdefault(user, deque(maxlen=self.limit)).append(self.clock())

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + RATE_WINDOW_SECONDS
        stale = [user for user, times in self._times.items() if not times or now - times[-1] >= RATE_WINDOW_SECONDS]
        for user in stale:
            del self._times[user]


@dataclass
class Core:
    engine: PoemEngine
    store: Store
    default_form: str = "5chu"
    poems_per_minute: int = 6
    admins: frozenset[str] = frozenset()
    clock: Callable[[], float] = time.monotonic
    poem_timeout_seconds: float = 60.0  # engine.write's deadline
    max_work: int = 16  # candidates x beams x stanzas of one poem
    max_in_flight: int = 256  # poems accepted at once (waiting or being written), all users together
    max_concurrent: int = 256  # of those, poems the engine writes at once; the others wait within their deadline
    # Called after an admin changed the serving model in the store; swaps this process's engine now.
    on_serving_changed: Callable[[], Awaitable[object]] | None = None
    explainer: Explainer = field(default_factory=Explainer)  # /giaithich: a CPU copy of the poem's model
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.poems_per_minute, self.clock)
        self._busy: set[str] = set()  # users whose poem is being written (one each, at most max_in_flight)
        self._engine_slots = asyncio.Semaphore(self.max_concurrent)
        self._drawings = 0  # pictures being drawn now

    @property
    def in_flight(self) -> int:
        return len(self._busy)

    # -- dispatch ----------------------------------------------------------------------------------
    async def command(
        self,
        user: str,
        name: str,
        args: str = "",
        on_lines: LinesCallback | None = None,
        display_name: str | None = None,
    ) -> Reply:
        """Run a typed command (`name` without the slash).

        `on_lines`: for a command that writes a poem, told its finished lines as they are
        decoded (see PoemEngine.write), so an adapter can show the poem growing.
        `display_name`: the user's name on the platform, for their poem pictures (if they agreed).
        """
        name, args = name.lower(), clean_input(args)
        name = COMMAND_ALIASES.get(name, name)
        if name in ADMIN_COMMANDS:
            # The one admin check. Anyone else gets exactly the answer for a command that does not exist.
            if user not in self.admins:
                return Reply(texts.UNKNOWN_COMMAND, error=True)
            log.info("admin %s: /%s %s", user, name, _echo(args))
            return await (self.trangthai if name == "trangthai" else self.mohinh)(user, args)
        if name not in USER_COMMANDS:
            return Reply(texts.UNKNOWN_COMMAND, error=True)
        if name in POEM_COMMANDS:
            return await getattr(self, name)(user, args, on_lines=on_lines)
        if name == "anh":
            return await self.anh(user, args, display_name=display_name)
        return await getattr(self, name)(user, args)

    async def action(self, user: str, data: str, display_name: str | None = None) -> Reply:
        """Run a button press; malformed, stale or someone else's buttons change nothing."""
        action = actions.parse(data)
        if action is None:
            return Reply(texts.UNKNOWN_ACTION, error=True, answer=texts.UNKNOWN_ACTION)
        if isinstance(action, actions.Rate):  # anyone who sees a poem may rate it, once each
            return await self.rate(user, action.poem_id, action.stars)
        if action.owner != user:
            return Reply(texts.NOT_YOUR_BUTTON, error=True, answer=texts.NOT_YOUR_BUTTON)
        if isinstance(action, actions.SetOption):
            reply = await self.caidat(user, f"{action.name} {action.value}")
            return reply if not reply.error else Reply(reply.text, error=True, answer=reply.text)
        if isinstance(action, actions.Reset):
            return await self.caidat(user, RESET_WORD)
        if isinstance(action, actions.Picture):
            return await self.picture(user, action.poem_id, display_name)
        return await self.delete_confirmed(user) if action.confirmed else Reply(texts.DELETE_CANCELLED)

    # -- commands ----------------------------------------------------------------------------------
    async def start(self, user: str, args: str = "") -> Reply:
        return Reply(texts.WELCOME)

    def help_text(self) -> str:
        return texts.HELP.format(
            per_minute=self.poems_per_minute, max_work=self.max_work, timeout=f"{self.poem_timeout_seconds:g}"
        )

    async def giupdo(self, user: str, args: str = "") -> Reply:
        return Reply(self.help_text())

    async def tho(
        self,
        user: str,
        args: str = "",
        form: str | None = None,
        new_seed: bool = False,
        on_lines: LinesCallback | None = None,
    ) -> Reply:
        """Write a poem that opens with `args`, with the user's settings."""
        prefs = await self.store.get_settings(user)
        try:
            request = self._request(args, prefs, form, new_seed)
        except InvalidRequest as exc:
            return Reply(self._opening_error(exc), error=True)
        too_heavy = self._too_heavy(request.settings, request.stanzas)
        if too_heavy:
            return Reply(too_heavy, error=True)
        # Checks and bookkeeping below run without an await between them: no other task interleaves.
        if user in self._busy:
            return Reply(texts.BUSY, error=True)
        if len(self._busy) >= self.max_in_flight:
            return Reply(texts.OVERLOADED, error=True)
        wait = self.limiter.retry_after(user)
        if wait > 0:
            return Reply(texts.RATE_LIMITED.format(seconds=max(1, round(wait))), error=True)
        self.limiter.record(user)
        self._busy.add(user)
        try:
            return await self._write(user, request, on_lines)
        finally:
            self._busy.discard(user)

    async def _write(self, user: str, request: PoemRequest, on_lines: LinesCallback | None = None) -> Reply:
        try:
            async with asyncio.timeout(self.poem_timeout_seconds) as deadline:
                # Too many poems at once make every one of them slow: wait for a slot (within the
                # deadline, so a request that waited too long never costs the engine anything).
                async with self._engine_slots:
                    # Cancelled at the deadline: its decoding stops.
                    poem = await self.engine.write(request, on_lines=on_lines)
        except TimeoutError:
            if not deadline.expired():
                log.exception("writing a poem for %s failed", user)
                return Reply(texts.APOLOGY, failed=True)
            log.warning("a poem for %s took over %g s and was cancelled", user, self.poem_timeout_seconds)
            return Reply(texts.POEM_TIMEOUT.format(seconds=self.poem_timeout_seconds), error=True)
        except Exception:
            log.exception("writing a poem for %s failed", user)
            return Reply(texts.APOLOGY, failed=True)
        poem_id = await self.store.add_poem(
            NewPoem(
                user_key=user,
                opening=poem.opening,
                prompt=poem.prompt,
                text=poem.text,
                form=poem.form,
                stanzas=poem.stanzas,
                model_version=poem.model_version,
                latency_ms=poem.timings["total_ms"],
                settings=poem.settings.as_dict(),
                seed=poem.seed,
                scores=poem.scores.as_dict(),
            )
        )
        footer = texts.POEM_FOOTER.format(
            form_title=texts.form_title(poem.form), temperature=poem.settings.temperature, seed=poem.seed
        )
        return Reply(f"{poem.text}\n\n{footer}", buttons=self.poem_buttons(poem_id, user, None), poem_id=poem_id)

    def _too_heavy(self, sampling: SamplingSettings, stanzas: int) -> str | None:
        """The refusal when one poem with these settings would decode more than max_work, else None."""
        resolved = sampling.replace(seed=0).resolve(self.engine.backend.info.defaults)
        candidates, beams, stanzas = work_of(resolved, stanzas)
        work = candidates * beams * stanzas
        if work <= self.max_work:
            return None
        return texts.TOO_HEAVY.format(
            candidates=candidates, beams=beams, stanzas=stanzas, work=work, limit=self.max_work
        )

    def _request(self, opening: str, prefs: dict, form: str | None, new_seed: bool) -> PoemRequest:
        sampling = SamplingSettings.from_dict({k: v for k, v in prefs.items() if k in SPECS})
        if new_seed:
            sampling = sampling.replace(seed=None)
        return PoemRequest(
            opening=clean_input(opening),
            form=form or prefs.get("form"),
            stanzas=int(prefs.get("stanzas", 1)),
            settings=sampling,
            default_form=self.default_form,
            scheme=prefs.get("scheme"),
        )

    @staticmethod
    def _opening_error(exc: InvalidRequest) -> str:
        params = dict(exc.params)
        if "form" in params:
            params["form_title"] = texts.form_title(params["form"])
        params.setdefault("forms", ", ".join(FORM_IDS))
        return texts.OPENING_ERRORS[exc.code].format(**params)

    async def tholai(self, user: str, args: str = "", on_lines: LinesCallback | None = None) -> Reply:
        """The last poem's opening and form again, with a new seed."""
        last = await self.store.last_poem(user)
        if last is None:
            return Reply(texts.NO_POEM_YET, error=True)
        reply = await self.tho(user, last.opening, form=last.form, new_seed=True, on_lines=on_lines)
        if reply.poem_id is not None:  # a weak "not this one" for the last poem (training.feedback)
            await self.store.record_regeneration(user, last.id, reply.poem_id)
        return reply

    async def danhgia(self, user: str, args: str = "") -> Reply:
        """Rate the user's last poem: /danhgia 4."""
        try:
            stars = int(args.strip())
        except ValueError:
            return Reply(texts.RATE_USAGE, error=True)
        last = await self.store.last_poem(user)
        if last is None:
            return Reply(texts.NO_POEM_YET, error=True)
        return await self.rate(user, last.id, stars)

    async def rate(self, user: str, poem_id: int, stars: int) -> Reply:
        if not 1 <= stars <= 5 or not 1 <= poem_id <= actions.MAX_POEM_ID:
            return Reply(texts.RATE_USAGE, error=True, answer=texts.RATE_USAGE)
        try:
            result = await self.store.rate(user, poem_id, stars)
        except LookupError:
            return Reply(texts.POEM_NOT_FOUND, error=True, answer=texts.POEM_NOT_FOUND)
        poem = await self.store.get_poem(poem_id)
        if result.created:
            message = texts.RATED_NEW.format(stars=stars)
        elif result.previous == stars:
            message = texts.RATED_SAME.format(stars=stars)
        else:
            message = texts.RATED_CHANGED.format(previous=result.previous, stars=stars)
        buttons = self.poem_buttons(poem_id, poem.user_key if poem else None, stars)
        return Reply(message, buttons=buttons, poem_id=poem_id, answer=message)

    @staticmethod
    def poem_buttons(poem_id: int, author: str | None, chosen: int | None) -> tuple[tuple[Button, ...], ...]:
        """The keyboard under a poem: 1-5 stars (anyone), then the author's 🖼 picture button."""
        stars = tuple(Button(texts.stars(chosen, n), actions.Rate(poem_id, n).encode()) for n in range(1, 6))
        if author is None:
            return (stars,)
        return stars, (Button(texts.PICTURE_BUTTON, actions.Picture(poem_id, author).encode()),)

    async def caidat(self, user: str, args: str = "") -> Reply:
        """Show settings; `<name> <value>` sets one; `macdinh` resets all, `<name> macdinh` one."""
        parts = args.split(maxsplit=1)
        if not parts:
            return await self._show_settings(user)
        if _fold(parts[0]) == RESET_WORD:
            if len(parts) > 1:  # "/caidat macdinh nhietdo": one setting meant, not all; reset nothing
                return Reply(texts.RESET_TAKES_NO_NAME.format(name=_echo(parts[1])), error=True)
            await self.store.reset_settings(user)
            return Reply(texts.SETTINGS_RESET, buttons=await self._settings_buttons(user))
        name = parts[0]
        known = setting_key(name)
        if known is None:
            return Reply(texts.SETTING_UNKNOWN.format(name=_echo(name), names=", ".join(SETTING_NAMES)), error=True)
        name = _fold(name)
        label = texts.SETTING_LABELS[known]
        if len(parts) == 1:
            return Reply(texts.SETTING_NEEDS_VALUE.format(name=name, example=example_value(known)), error=True)
        raw = parts[1]
        prefs = await self.store.get_settings(user)
        if _fold(raw) == RESET_WORD:
            too_heavy = self._settings_too_heavy({k: v for k, v in prefs.items() if k != known})
            if too_heavy:
                return Reply(too_heavy, error=True)
            await self.store.reset_settings(user, [known])
            return Reply(texts.SETTING_SAVED.format(label=label, value=texts.SETTING_MODEL_DEFAULT))
        if known == "temperature" and _fold(raw) in TEMPERATURE_PRESETS:
            raw = str(TEMPERATURE_PRESETS[_fold(raw)])
        try:
            key, value = parse_setting(name, raw)
        except (SettingError, ValueError):
            return Reply(
                texts.SETTING_BAD_VALUE.format(value=_echo(raw), label=label, valid=valid_values(known)), error=True
            )
        too_heavy = self._settings_too_heavy({**prefs, key: value})
        if too_heavy:
            return Reply(too_heavy, error=True)
        await self.store.set_setting(user, key, value)
        return Reply(
            texts.SETTING_SAVED.format(label=label, value=show_value(key, value)),
            buttons=await self._settings_buttons(user),
        )

    def _settings_too_heavy(self, prefs: dict) -> str | None:
        sampling = SamplingSettings.from_dict({k: v for k, v in prefs.items() if k in SPECS})
        return self._too_heavy(sampling, int(prefs.get("stanzas", MIN_STANZAS)))

    async def _show_settings(self, user: str) -> Reply:
        prefs = await self.store.get_settings(user)
        defaults = {
            **SamplingSettings().resolve(self.engine.backend.info.defaults).as_dict(),
            **{key: setting.default for key, setting in BOT_SETTINGS.items()},
        }
        lines = [texts.SETTINGS_TITLE]
        for short, key in SETTING_NAMES.items():
            if key in prefs:
                value, mark = prefs[key], ""
            else:
                value = defaults.get(key) if key != "seed" else None
                mark = texts.SETTING_DEFAULT_MARK
            if key == "form" and not value:
                value = texts.form_title(self.default_form) + " (tự chọn)"
            elif value is None:
                value = texts.SETTING_MODEL_DEFAULT
            else:
                value = show_value(key, value)
            lines.append(
                texts.SETTING_LINE.format(name=short, label=texts.SETTING_LABELS[key], value=value, default=mark)
            )
        lines.append(texts.SETTINGS_HINT)
        return Reply("\n".join(lines), buttons=await self._settings_buttons(user))

    async def _settings_buttons(self, user: str) -> tuple[tuple[Button, ...], ...]:
        """The settings panel: its buttons act only for `user`, whoever else sees them."""

        def set_button(label: str, name: str, value: object) -> Button:
            return Button(label, actions.SetOption(name, str(value), user).encode())

        presets = tuple(
            set_button(texts.TEMPERATURE_PRESET_LABELS[name], "nhietdo", value)
            for name, value in TEMPERATURE_PRESETS.items()
        )
        forms = tuple(set_button(f.title, "the", f.id) for f in FORMS.values())
        stanzas = tuple(
            set_button(texts.STANZAS_BUTTON.format(n=n), "kho", n) for n in range(MIN_STANZAS, MAX_STANZAS + 1)
        )
        return presets, forms, stanzas, (Button(texts.RESET_BUTTON, actions.Reset(user).encode()),)

    async def top(self, user: str, args: str = "") -> Reply:
        """Poems others liked, never a private one: see Store.public_top_poems. No names, no ids."""
        rated = await self.store.public_top_poems(limit=TOP_LIMIT, min_raters=TOP_MIN_RATERS)
        if not rated:
            return Reply(texts.TOP_EMPTY)
        items = [
            texts.TOP_ITEM.format(
                rank=i, avg=r.avg_stars, count=r.n_ratings, form_title=texts.form_title(r.poem.form), text=r.poem.text
            )
            for i, r in enumerate(rated, 1)
        ]
        return Reply("\n\n".join([texts.TOP_TITLE, *items]))

    async def anh(self, user: str, args: str = "", display_name: str | None = None) -> Reply:
        """The user's last poem as a picture (the 🖼 button does the same for any of their poems)."""
        last = await self.store.last_poem(user)
        if last is None:
            return Reply(texts.NO_POEM_YET, error=True)
        return await self.picture(user, last.id, display_name)

    async def picture(self, user: str, poem_id: int, display_name: str | None = None) -> Reply:
        poem = await self.store.get_poem(poem_id)
        if poem is None or poem.user_key != user:
            return Reply(texts.POEM_NOT_FOUND, error=True, answer=texts.POEM_NOT_FOUND)
        prefs = await self.store.get_settings(user)
        name = " ".join((display_name or "").split())[:PICTURE_NAME_CHARS]
        author = (
            texts.PICTURE_AUTHOR_SIGNED.format(name=name, bot=texts.BOT_NAME)
            if name and prefs.get("signature", BOT_SETTINGS["signature"].default)
            else texts.PICTURE_AUTHOR.format(bot=texts.BOT_NAME)
        )
        # The user's few words title the poem; an opening that is the whole first line would only repeat it.
        first_line = poem.text.split("\n", 1)[0]
        title = poem.opening if poem.opening.strip() != first_line.strip() else texts.PICTURE_UNTITLED
        async with self._picture_slot() as free:
            if not free:
                return Reply(texts.DRAWING_BUSY, error=True, answer=texts.DRAWING_BUSY)
            image = await asyncio.to_thread(render_poem, title, poem.text, texts.form_title(poem.form), author)
        return Reply(texts.PICTURE_CAPTION.format(title=title), image=image)

    async def giaithich(self, user: str, args: str = "") -> Reply:
        """How sure the model was of each syllable of the last poem; `<line> <syllable>`: where it looked."""
        focus = _parse_focus(args)
        if focus is False:
            return Reply(texts.EXPLAIN_USAGE, error=True)
        last = await self.store.last_poem(user)
        if last is None:
            return Reply(texts.NO_POEM_YET, error=True)
        model_dir = await self._model_dir_of(last.model_version)
        if model_dir is None:
            return Reply(texts.EXPLAIN_UNAVAILABLE.format(version=last.model_version), error=True)
        lines = [line for line in last.text.split("\n") if line.strip()]
        async with self._picture_slot() as free:
            if not free:
                return Reply(texts.DRAWING_BUSY, error=True)
            try:
                explanation = await self.explainer.explain(model_dir, last.form, lines, last.opening)
            except (ModelDirError, OSError):  # not syllable-level, or its directory is gone
                return Reply(texts.EXPLAIN_UNAVAILABLE.format(version=last.model_version), error=True)
            refusal = _focus_refusal(explanation, *focus) if focus is not None else None
            if refusal:
                return Reply(refusal, error=True)
            image = await asyncio.to_thread(render_explanation, explanation, focus)
        return Reply(_explain_caption(explanation, focus), image=image)

    async def _model_dir_of(self, version: str) -> Path | None:
        """The directory of the model that wrote a poem: the serving one, or one the store still knows."""
        if version == self.engine.model_version:
            return Path(self.engine.backend.info.path)
        known = await self.store.get_model_version(version)
        return Path(known.path) if known is not None else None

    @contextlib.asynccontextmanager
    async def _picture_slot(self) -> AsyncIterator[bool]:
        """One of MAX_DRAWINGS places for explaining and drawing (False: all taken, answer "busy")."""
        if self._drawings >= MAX_DRAWINGS:
            yield False
            return
        self._drawings += 1
        try:
            yield True
        finally:
            self._drawings -= 1

    async def xoadulieu(self, user: str, args: str = "") -> Reply:
        """Ask first: deleting cannot be undone."""
        return Reply(
            texts.DELETE_CONFIRM,
            buttons=(
                (
                    Button(texts.DELETE_YES, actions.Delete(True, user).encode()),
                    Button(texts.DELETE_NO, actions.Delete(False, user).encode()),
                ),
            ),
        )

    async def delete_confirmed(self, user: str) -> Reply:
        counts = await self.store.delete_user_data(user)
        return Reply(
            texts.DELETED.format(
                poems=counts.get("poems", 0), ratings=counts.get("ratings", 0), settings=counts.get("settings", 0)
            )
        )

    # -- admin commands (Core.command checks the caller first) -------------------------------------
    async def trangthai(self, user: str, args: str = "") -> Reply:
        """The serving model and its figures, the last day's activity, the poems being written."""
        serving = await self.store.serving_model()
        activity = await self.store.activity_since(datetime.now(UTC) - timedelta(days=1))
        return Reply(
            texts.STATUS.format(
                bot=texts.BOT_NAME,
                version=self.engine.model_version,
                metrics=_metrics_line(serving.metrics if serving else {}),
                poems=activity["poems"],
                ratings=activity["ratings"],
                users=activity["users"],
                in_flight=self.in_flight,
                max_in_flight=self.max_in_flight,
            )
        )

    async def mohinh(self, user: str, args: str = "") -> Reply:
        """List model versions; `chon <version>` promotes one; `quaylai` goes back to the previous one."""
        parts = args.split()
        if not parts:
            return await self._list_models()
        verb = _fold(parts[0])
        if verb == PROMOTE_WORD and len(parts) == 2:
            return await self._promote(user, parts[1])
        if verb == ROLLBACK_WORD and len(parts) == 1:
            versions = await self.store.list_model_versions()
            serving = next((v.version for v in versions if v.status == "serving"), None)
            retired = sorted(
                (v for v in versions if v.status == "retired" and v.version != serving), key=lambda v: v.updated_at
            )
            if not retired:
                return Reply(texts.MODEL_NO_PREVIOUS, error=True)
            # A swap retires the serving model at that moment: the latest retired one served last.
            return await self._promote(user, retired[-1].version)
        return Reply(texts.MODEL_USAGE, error=True)

    async def _list_models(self) -> Reply:
        versions = sorted(await self.store.list_model_versions(), key=lambda v: v.created_at, reverse=True)
        if not versions:
            return Reply(texts.MODELS_EMPTY)
        lines = [texts.MODELS_TITLE]
        for v in versions[:MODEL_LIST_LIMIT]:
            lines.append(
                texts.MODEL_LINE.format(
                    mark="▶" if v.status == "serving" else "•",
                    version=v.version,
                    status=texts.MODEL_STATUS_LABELS.get(v.status, v.status),
                    metrics=_metrics_line(v.metrics),
                )
            )
        lines.append(texts.MODELS_HINT)
        return Reply("\n".join(lines))

    async def _promote(self, user: str, version: str) -> Reply:
        target = await self.store.get_model_version(version)
        if target is None:
            return Reply(texts.MODEL_UNKNOWN.format(version=_echo(version)), error=True)
        if target.status == "serving":
            return Reply(texts.MODEL_ALREADY.format(version=version), error=True)
        if target.status == "rejected":
            return Reply(texts.MODEL_REJECTED.format(version=version), error=True)
        current = self.engine.model_version
        try:
            info = read_model_info(target.path)
        except ModelDirError:
            return Reply(texts.MODEL_UNREADABLE.format(version=version, path=target.path, current=current), error=True)
        try:
            require_syllable_level(info)
        except ModelDirError:
            return Reply(texts.MODEL_NOT_SYLLABLE.format(path=target.path), error=True)
        # The store says which model serves; every running bot's watcher follows it (as `python -m bot swap`).
        previous = await self.store.set_serving_model(version)
        log.warning("admin %s made model %s the serving one (was %s)", user, version, previous)
        if self.on_serving_changed is not None:
            try:
                await self.on_serving_changed()
            except Exception:
                log.exception("admin %s: swapping to model %s failed; back to %s", user, version, previous)
                if previous is not None:
                    await self.store.set_serving_model(previous)
                return Reply(
                    texts.MODEL_UNREADABLE.format(version=version, path=target.path, current=current), failed=True
                )
        return Reply(texts.MODEL_SWAPPED.format(version=version, previous=previous or "-"))


MODEL_LIST_LIMIT = 20
PICTURE_NAME_CHARS = 40  # a display name on a picture, at most
MAX_DRAWINGS = 4  # pictures drawn at once (each a thread); more get "busy"
LEAST_SURE_SHOWN = 3


def _parse_focus(args: str) -> tuple[int, int] | None | bool:
    """ "" -> None (no focus); "3 2" -> (3, 2); anything else -> False."""
    parts = args.split()
    if not parts:
        return None
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        return False
    return int(parts[0]), int(parts[1])


def _focus_refusal(explanation: Explanation, line: int, index: int) -> str | None:
    lines = explanation.lines
    if not 1 <= line <= len(lines):
        return texts.EXPLAIN_NO_SUCH_LINE.format(lines=len(lines))
    if not 1 <= index <= len(lines[line - 1]):
        return texts.EXPLAIN_NO_SUCH.format(lines=len(lines), line=line, count=len(lines[line - 1]))
    return None


def _explain_caption(explanation: Explanation, focus: tuple[int, int] | None) -> str:
    if focus is None:
        least = explanation.least_sure(LEAST_SURE_SHOWN)
        shown = ", ".join(f"«{s.text}» ({percent(s.probability)})" for _, _, s in least) or "-"
        example = f"{least[0][0]} {least[0][1]}" if least else "2 3"
        return texts.EXPLAIN_CAPTION.format(least=shown, example=example)
    line, index = focus
    weights = explanation.attention(line, index)
    ranked = sorted(
        ((w, explanation.lines[i][j].text) for i, row in enumerate(weights) for j, w in enumerate(row) if w > 0),
        reverse=True,
    )[:LEAST_SURE_SHOWN]
    top = ", ".join(f"«{text}» ({percent(w)})" for w, text in ranked) or "-"
    syllable = explanation.lines[line - 1][index - 1].text
    return texts.EXPLAIN_FOCUS_CAPTION.format(syllable=syllable, line=line, index=index, top=top)


METRICS_SHOWN = 8


def _metrics_line(metrics: dict) -> str:
    """A model's recorded figures in one line: the first few numbers and flags, nested ones flattened."""
    items: list[str] = []

    def walk(prefix: str, value: object) -> None:
        if len(items) >= METRICS_SHOWN:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, bool):
            items.append(f"{prefix[:-1]}={texts.YES_NO[value]}")
        elif isinstance(value, int | float):
            items.append(f"{prefix[:-1]}={value:.4g}")

    walk("", metrics or {})
    return ", ".join(items) if items else texts.NO_METRICS
