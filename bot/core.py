"""The platform-agnostic bot: commands, input checks, per-user settings, quotas.

Adapters (console, Telegram, Discord) call `Core.command` for a typed command
and `Core.action` for a button press, and render the `Reply` they get back:
text plus rows of buttons, each button carrying an action string that comes
back to `Core.action` when pressed. Nothing here knows about a platform.

Bad input gets a clear Vietnamese message and changes nothing: every check
runs before the store is touched.
"""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot import texts
from bot.store import NewPoem, Store
from engine.engine import PoemEngine
from engine.forms import FORM_IDS, FORMS, MAX_STANZAS, MIN_STANZAS
from engine.request import InvalidRequest, PoemRequest
from engine.settings import SPECS, SamplingSettings, SettingError

log = logging.getLogger(__name__)

# What users type in /caidat -> the setting's internal name.
SETTING_NAMES = {
    "nhietdo": "temperature", "topk": "top_k", "topp": "top_p", "lapphat": "repetition_penalty",
    "ngram": "no_repeat_ngram_size", "chienluoc": "strategy", "sochum": "num_beams", "ungvien": "candidates",
    "hatgiong": "seed", "the": "form", "kho": "stanzas",
}
SETTING_ORDER = tuple(SETTING_NAMES.values())
STRATEGY_ALIASES = {"ngaunhien": "sample", "thamlam": "greedy", "chum": "beam"}
RESET_WORD = "macdinh"
TEMPERATURE_PRESETS = {"ondinh": 0.6, "canbang": 0.9, "baybong": 1.2}
RATE_WINDOW_SECONDS = 60.0
TOP_LIMIT = 5


@dataclass(frozen=True)
class Button:
    label: str
    action: str  # comes back to Core.action, e.g. "rate:12:5"


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    poem_id: int | None = None
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


def parse_setting(name: str, raw: str) -> tuple[str, object]:
    """A user's (name, value) -> (internal name, checked value), or SettingError/KeyError."""
    key = setting_key(name)
    if key is None:
        raise KeyError(name)
    if key == "form":
        folded = _fold(raw)
        folded = folded if folded in FORM_IDS else f"{folded}chu" if f"{folded}chu" in FORM_IDS else folded
        if folded not in FORM_IDS:
            raise ValueError(raw)
        return key, folded
    if key == "stanzas":
        try:
            n = int(raw.strip())
        except ValueError:
            raise ValueError(raw) from None
        if not MIN_STANZAS <= n <= MAX_STANZAS:
            raise ValueError(raw)
        return key, n
    if key == "strategy":
        raw = STRATEGY_ALIASES.get(_fold(raw), _fold(raw))
    return key, SPECS[key].parse(raw)


def valid_values(key: str) -> str:
    if key == "form":
        return ", ".join(FORM_IDS)
    if key == "stanzas":
        return f"{MIN_STANZAS}..{MAX_STANZAS}"
    if key == "strategy":
        return ", ".join(STRATEGY_ALIASES)
    return SPECS[key].describe()


class RateLimiter:
    """At most `limit` accepted requests per user in any RATE_WINDOW_SECONDS."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.clock = clock
        self._times: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, user: str) -> float:
        """Seconds until the user may ask again (0: now)."""
        now = self.clock()
        times = self._times[user]
        while times and now - times[0] >= RATE_WINDOW_SECONDS:
            times.popleft()
        return 0.0 if len(times) < self.limit else RATE_WINDOW_SECONDS - (now - times[0])

    def record(self, user: str) -> None:
        self._times[user].append(self.clock())


@dataclass
class Core:
    engine: PoemEngine
    store: Store
    default_form: str = "5chu"
    poems_per_minute: int = 6
    admins: frozenset[str] = frozenset()
    clock: Callable[[], float] = time.monotonic
    limiter: RateLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.poems_per_minute, self.clock)
        self._limit_lock = asyncio.Lock()

    # -- dispatch ----------------------------------------------------------------------------------
    async def command(self, user: str, name: str, args: str = "") -> Reply:
        """Run a typed command (`name` without the slash)."""
        handler = {
            "start": self.start, "giupdo": self.help, "help": self.help, "tho": self.tho, "tholai": self.tholai,
            "caidat": self.caidat, "danhgia": self.danhgia, "top": self.top, "xoadulieu": self.xoadulieu,
        }.get(name.lower())
        if handler is None:
            return Reply(texts.UNKNOWN_COMMAND, error=True)
        return await handler(user, args)

    async def action(self, user: str, action: str) -> Reply:
        """Run a button press; unknown or stale actions change nothing."""
        kind, _, rest = action.partition(":")
        try:
            if kind == "rate":
                poem_id, stars = rest.split(":")
                return await self.rate(user, int(poem_id), int(stars))
            if kind == "set":
                name, value = rest.split(":", 1)
                return await self.caidat(user, f"{name} {value}")
            if kind == "reset":
                return await self.caidat(user, RESET_WORD)
            if kind == "delete":
                return await self.delete_confirmed(user) if rest == "yes" else Reply(texts.DELETE_CANCELLED)
        except ValueError:
            pass
        return Reply(texts.UNKNOWN_ACTION, error=True, answer=texts.UNKNOWN_ACTION)

    # -- commands ----------------------------------------------------------------------------------
    async def start(self, user: str, args: str = "") -> Reply:
        return Reply(texts.WELCOME)

    async def help(self, user: str, args: str = "") -> Reply:
        return Reply(texts.HELP)

    async def tho(self, user: str, args: str = "", form: str | None = None, new_seed: bool = False) -> Reply:
        """Write a poem that opens with `args`, with the user's settings."""
        prefs = await self.store.get_settings(user)
        try:
            request = self._request(args, prefs, form, new_seed)
        except InvalidRequest as exc:
            return Reply(self._opening_error(exc), error=True)
        async with self._limit_lock:
            wait = self.limiter.retry_after(user)
            if wait > 0:
                return Reply(texts.RATE_LIMITED.format(seconds=max(1, round(wait))), error=True)
            self.limiter.record(user)
        try:
            poem = await self.engine.write(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("writing a poem for %s failed", user)
            return Reply(texts.APOLOGY, failed=True)
        poem_id = await self.store.add_poem(NewPoem(
            user_key=user, opening=poem.opening, prompt=poem.prompt, text=poem.text, form=poem.form,
            stanzas=poem.stanzas, model_version=poem.model_version, latency_ms=poem.timings["total_ms"],
            settings=poem.settings.as_dict(), seed=poem.seed, scores=poem.scores.as_dict()))
        footer = texts.POEM_FOOTER.format(form_title=texts.form_title(poem.form),
                                          temperature=poem.settings.temperature, seed=poem.seed)
        return Reply(f"{poem.text}\n\n{footer}", buttons=(self.rating_buttons(poem_id, None),), poem_id=poem_id)

    def _request(self, opening: str, prefs: dict, form: str | None, new_seed: bool) -> PoemRequest:
        sampling = SamplingSettings.from_dict({k: v for k, v in prefs.items() if k in SPECS})
        if new_seed:
            sampling = sampling.replace(seed=None)
        return PoemRequest(opening=opening, form=form or prefs.get("form"), stanzas=int(prefs.get("stanzas", 1)),
                           settings=sampling, default_form=self.default_form)

    @staticmethod
    def _opening_error(exc: InvalidRequest) -> str:
        params = dict(exc.params)
        if "form" in params:
            params["form_title"] = texts.form_title(params["form"])
        params.setdefault("forms", ", ".join(FORM_IDS))
        return texts.OPENING_ERRORS[exc.code].format(**params)

    async def tholai(self, user: str, args: str = "") -> Reply:
        """The last poem's opening and form again, with a new seed."""
        last = await self.store.last_poem(user)
        if last is None:
            return Reply(texts.NO_POEM_YET, error=True)
        reply = await self.tho(user, last.opening, form=last.form, new_seed=True)
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
        if not 1 <= stars <= 5:
            return Reply(texts.RATE_USAGE, error=True, answer=texts.RATE_USAGE)
        try:
            result = await self.store.rate(user, poem_id, stars)
        except LookupError:
            return Reply(texts.POEM_NOT_FOUND, error=True, answer=texts.POEM_NOT_FOUND)
        message = (texts.RATED_CHANGED.format(previous=result.previous, stars=stars) if not result.created
                   else texts.RATED_NEW.format(stars=stars))
        return Reply(message, buttons=(self.rating_buttons(poem_id, stars),), poem_id=poem_id, answer=message)

    @staticmethod
    def rating_buttons(poem_id: int, chosen: int | None) -> tuple[Button, ...]:
        return tuple(Button(texts.stars(chosen, n), f"rate:{poem_id}:{n}") for n in range(1, 6))

    async def caidat(self, user: str, args: str = "") -> Reply:
        """Show settings; `<name> <value>` sets one; `macdinh` resets all, `<name> macdinh` one."""
        parts = args.split(maxsplit=1)
        if not parts:
            return await self._show_settings(user)
        if _fold(parts[0]) == RESET_WORD:
            await self.store.reset_settings(user)
            return Reply(texts.SETTINGS_RESET, buttons=await self._settings_buttons(user))
        name = parts[0]
        known = setting_key(name)
        if known is None:
            return Reply(texts.SETTING_UNKNOWN.format(name=name, names=", ".join(SETTING_NAMES)), error=True)
        label = texts.SETTING_LABELS[known]
        if len(parts) == 1:
            return Reply(texts.SETTING_NEEDS_VALUE.format(name=name, example=valid_values(known).split()[0]),
                         error=True)
        raw = parts[1]
        if _fold(raw) == RESET_WORD:
            await self.store.reset_settings(user, [known])
            return Reply(texts.SETTING_SAVED.format(label=label, value=texts.SETTING_MODEL_DEFAULT))
        if known == "temperature" and _fold(raw) in TEMPERATURE_PRESETS:
            raw = str(TEMPERATURE_PRESETS[_fold(raw)])
        try:
            key, value = parse_setting(name, raw)
        except (SettingError, ValueError):
            return Reply(texts.SETTING_BAD_VALUE.format(value=raw, label=label, valid=valid_values(known)),
                         error=True)
        await self.store.set_setting(user, key, value)
        shown = texts.form_title(value) if key == "form" else value
        return Reply(texts.SETTING_SAVED.format(label=label, value=shown), buttons=await self._settings_buttons(user))

    async def _show_settings(self, user: str) -> Reply:
        prefs = await self.store.get_settings(user)
        defaults = {**SamplingSettings().resolve(self.engine.backend.info.defaults).as_dict(),
                    "form": None, "stanzas": 1}
        lines = [texts.SETTINGS_TITLE]
        for short, key in SETTING_NAMES.items():
            if key in prefs:
                value, mark = prefs[key], ""
            else:
                value = defaults.get(key) if key != "seed" else None
                mark = texts.SETTING_DEFAULT_MARK
            if key == "form":
                value = texts.form_title(value) if value else texts.form_title(self.default_form) + " (tự chọn)"
            elif key == "strategy":
                value = texts.STRATEGY_LABELS.get(value, value)
            elif value is None:
                value = texts.SETTING_MODEL_DEFAULT
            lines.append(texts.SETTING_LINE.format(name=short, label=texts.SETTING_LABELS[key], value=value,
                                                   default=mark))
        lines.append(texts.SETTINGS_HINT)
        return Reply("\n".join(lines), buttons=await self._settings_buttons(user))

    async def _settings_buttons(self, user: str) -> tuple[tuple[Button, ...], ...]:
        presets = tuple(Button(texts.TEMPERATURE_PRESET_LABELS[name], f"set:nhietdo:{value}")
                        for name, value in TEMPERATURE_PRESETS.items())
        forms = tuple(Button(f.title, f"set:the:{f.id}") for f in FORMS.values())
        stanzas = tuple(Button(texts.STANZAS_BUTTON.format(n=n), f"set:kho:{n}")
                        for n in range(MIN_STANZAS, MAX_STANZAS + 1))
        return presets, forms, stanzas, (Button(texts.RESET_BUTTON, "reset:"),)

    async def top(self, user: str, args: str = "") -> Reply:
        rated = await self.store.top_poems(limit=TOP_LIMIT)
        if not rated:
            return Reply(texts.TOP_EMPTY)
        items = [texts.TOP_ITEM.format(rank=i, avg=r.avg_stars, count=r.n_ratings,
                                       form_title=texts.form_title(r.poem.form), text=r.poem.text)
                 for i, r in enumerate(rated, 1)]
        return Reply("\n\n".join([texts.TOP_TITLE, *items]))

    async def xoadulieu(self, user: str, args: str = "") -> Reply:
        """Ask first: deleting cannot be undone."""
        return Reply(texts.DELETE_CONFIRM,
                     buttons=((Button(texts.DELETE_YES, "delete:yes"), Button(texts.DELETE_NO, "delete:no")),))

    async def delete_confirmed(self, user: str) -> Reply:
        counts = await self.store.delete_user_data(user)
        return Reply(texts.DELETED.format(poems=counts.get("poems", 0), ratings=counts.get("ratings", 0),
                                          settings=counts.get("settings", 0)))
