"""Button actions: what a button carries, and the one parser of what comes back.

A button's action travels through the platform (Telegram callback_data, a
Discord custom_id) and comes back when it is pressed, from anyone who can see
the message, possibly forged. So it is parsed here, once, into a bounded,
validated value before anything else touches it; anything else is None.

Two kinds of buttons:
- rating stars under a poem (`rate:<poem id>:<stars>`): anyone may press them,
  in a group each member rates for themselves;
- buttons made for one user (the settings panel, the delete confirmation,
  the 🖼 picture of one's own poem): they carry their owner
  (`set:nhietdo:0.6@tg:123`, `reset@tg:123`, `delete:yes@tg:123`,
  `pic:12@tg:123`) and act only for that user.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ACTION_BYTES = 64  # Telegram's callback_data limit; Discord's custom_id (100) holds "tho:" + this
MAX_POEM_ID = 2**63 - 1  # SQLite's integer
_OWNER = r"(?P<owner>(?:tg|dc|console):[A-Za-z0-9_.\-]{1,40})"
_PATTERNS = {
    "rate": re.compile(r"rate:(?P<poem>[1-9][0-9]{0,18}):(?P<stars>[1-5])"),
    "set": re.compile(r"set:(?P<name>[a-z]{1,16}):(?P<value>[A-Za-z0-9._\-]{1,24})@" + _OWNER),
    "reset": re.compile(r"reset@" + _OWNER),
    "delete": re.compile(r"delete:(?P<answer>yes|no)@" + _OWNER),
    "pic": re.compile(r"pic:(?P<poem>[1-9][0-9]{0,18})@" + _OWNER),
}


@dataclass(frozen=True)
class Rate:
    poem_id: int
    stars: int

    def encode(self) -> str:
        return f"rate:{self.poem_id}:{self.stars}"


@dataclass(frozen=True)
class SetOption:
    name: str  # what a user types in /caidat (nhietdo, the, kho, ...)
    value: str
    owner: str

    def encode(self) -> str:
        return f"set:{self.name}:{self.value}@{self.owner}"


@dataclass(frozen=True)
class Reset:
    owner: str

    def encode(self) -> str:
        return f"reset@{self.owner}"


@dataclass(frozen=True)
class Delete:
    confirmed: bool
    owner: str

    def encode(self) -> str:
        return f"delete:{'yes' if self.confirmed else 'no'}@{self.owner}"


@dataclass(frozen=True)
class Picture:
    """The poem as an image; only its author's button (the picture may carry the author's name)."""

    poem_id: int
    owner: str

    def encode(self) -> str:
        return f"pic:{self.poem_id}@{self.owner}"


Action = Rate | SetOption | Reset | Delete | Picture


def parse(data: object) -> Action | None:
    """Callback data -> an Action, or None for anything malformed, oversized or stale."""
    if not isinstance(data, str) or not data.isascii() or len(data) > MAX_ACTION_BYTES:
        return None
    kind = data.split(":", 1)[0].split("@", 1)[0]
    pattern = _PATTERNS.get(kind)
    match = pattern.fullmatch(data) if pattern else None
    if match is None:
        return None
    if kind == "rate":
        poem_id = int(match["poem"])
        return Rate(poem_id, int(match["stars"])) if poem_id <= MAX_POEM_ID else None
    if kind == "set":
        return SetOption(match["name"], match["value"], match["owner"])
    if kind == "reset":
        return Reset(match["owner"])
    if kind == "pic":
        poem_id = int(match["poem"])
        return Picture(poem_id, match["owner"]) if poem_id <= MAX_POEM_ID else None
    return Delete(match["answer"] == "yes", match["owner"])
