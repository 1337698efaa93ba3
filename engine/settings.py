"""Sampling settings and their valid ranges: the one place that checks them.

`None` means "the model's own default": the values in the model directory's
generation_config.json, written there by the training sweep. Each backend maps
the resolved settings to its own parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass
from typing import Any

STRATEGIES = ("sample", "greedy", "beam")
MAX_SEED = 2**31 - 1


def derive_seed(seed: int, *path: int) -> int:
    """A seed for one part of a request (its candidate k), unlike its neighbours'.

    `seed + k` would give request 42's second candidate the same draws as
    request 43's first; hashing the whole path keeps requests apart.
    """
    if not path or not any(path):
        return seed
    digest = hashlib.blake2b(repr((seed, *path)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (MAX_SEED + 1)


@dataclass(frozen=True)
class Spec:
    """The valid values of one setting."""

    name: str
    kind: type  # float, int or str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> Any:
        """Return the value in its canonical type, or raise SettingError."""
        if self.kind is str:
            if not isinstance(value, str) or value not in self.choices:
                raise SettingError(self, value)
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingError(self, value)
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise SettingError(self, value)
            value = int(value)
        else:
            value = float(value)
            if value != value:  # NaN
                raise SettingError(self, value)
        if not (self.low <= value <= self.high):
            raise SettingError(self, value)
        return value

    def parse(self, text: str) -> Any:
        """Read a value typed by a user ("0,9" and "0.9" both mean 0.9)."""
        text = text.strip()
        if self.kind is str:
            return self.check(text.lower())
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise SettingError(self, text) from None
        return self.check(number)

    def describe(self) -> str:
        if self.kind is str:
            return " | ".join(self.choices)
        return f"{self.low:g}..{self.high:g}"


class SettingError(ValueError):
    def __init__(self, spec: Spec, value: Any):
        super().__init__(f"{spec.name}={value!r} is out of range ({spec.describe()})")
        self.spec = spec
        self.value = value


SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("strategy", str, choices=STRATEGIES),
        Spec("temperature", float, 0.05, 2.0),
        Spec("top_k", int, 0, 1000),  # 0: no top-k cut
        Spec("top_p", float, 0.05, 1.0),
        Spec("repetition_penalty", float, 1.0, 2.0),
        Spec("no_repeat_ngram_size", int, 0, 8),  # 0: off
        Spec("num_beams", int, 1, 8),
        Spec("candidates", int, 1, 16),  # best-of-n, reranked by the form checker
        Spec("seed", int, 0, MAX_SEED),
    )
}

# What a model directory without generation defaults gets.
FALLBACK_DEFAULTS: dict[str, Any] = {
    "strategy": "sample",
    "temperature": 0.8,
    "top_k": 50,
    "top_p": 0.95,
    "repetition_penalty": 1.1,
    "no_repeat_ngram_size": 0,
    "num_beams": 4,
    "candidates": 2,
}


@dataclass(frozen=True)
class SamplingSettings:
    """A user's sampling choices; None leaves the model's default."""

    strategy: str | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    no_repeat_ngram_size: int | None = None
    num_beams: int | None = None
    candidates: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                object.__setattr__(self, f.name, SPECS[f.name].check(value))

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SamplingSettings:
        """Build from stored or JSON values, ignoring unknown keys."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def as_dict(self, *, drop_none: bool = True) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: v for k, v in d.items() if v is not None} if drop_none else d

    def replace(self, **changes: Any) -> SamplingSettings:
        return dataclasses.replace(self, **changes)

    def resolve(self, defaults: dict[str, Any] | None = None, rng: random.Random | None = None) -> SamplingSettings:
        """Fill every None from the model defaults, then our fallbacks; draw a seed."""
        merged = dict(FALLBACK_DEFAULTS)
        for name, value in (defaults or {}).items():
            if name in SPECS and value is not None:
                merged[name] = SPECS[name].check(value)
        merged.update(self.as_dict())
        if merged.get("seed") is None:
            merged["seed"] = (rng or random.SystemRandom()).randint(0, MAX_SEED)
        return SamplingSettings.from_dict(merged)


def generation_defaults_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Our settings from a transformers generation_config.json dict.

    The sweep stores its choice with the standard keys (temperature, top_k,
    top_p, repetition_penalty, no_repeat_ngram_size, num_beams, do_sample)
    plus `tho_candidates` and `tho_strategy`; unknown or invalid keys are ignored.
    """
    out: dict[str, Any] = {}
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram_size", "num_beams"):
        if config.get(name) is not None:
            out[name] = config[name]
    if config.get("tho_candidates") is not None:
        out["candidates"] = config["tho_candidates"]
    if config.get("tho_strategy") is not None:
        out["strategy"] = config["tho_strategy"]
    elif config.get("do_sample") is False:
        out["strategy"] = "beam" if (config.get("num_beams") or 1) > 1 else "greedy"
    valid = {}
    for name, value in out.items():
        try:
            valid[name] = SPECS[name].check(value)
        except SettingError:
            continue
    return valid
