"""Logging that never writes a secret.

Every line the bot logs goes through one formatter that removes the secrets
the operator gave in confidence (bot tokens, the webhook secret, the admin
chat id) wherever they appear: in a message, in its arguments, in a
traceback. A Telegram bot token is also caught by its shape, so a token
that reaches a log through some other path (an httpx URL, an exception
text) is masked too. httpx and httpcore log each request URL, and a Bot
API URL carries the token: they are kept at WARNING whatever the level.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
# Telegram: "<bot id>:<35 characters>", in a URL as /bot<token>/. Discord: three base64url parts, and
# the interaction tokens in webhook and callback URLs (each answers its interaction for 15 minutes).
TOKEN_PATTERNS = (
    re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}"),
    re.compile(r"(?<=/bot)[^/\s]+(?=/)"),
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    re.compile(r"(?<=/webhooks/)(\d+/)[^/\s?]+"),
    re.compile(r"(?<=/interactions/)(\d+/)[^/\s?]+"),
)
CHATTY_LOGGERS = ("httpx", "httpcore", "hpack", "websockets")
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words


class Redactor:
    """Masks known secret values and anything shaped like a bot token."""

    def __init__(self, secrets: Iterable[object] = ()):
        values = {str(s) for s in secrets if s is not None and len(str(s)) >= MIN_SECRET_CHARS}
        # Longest first: a secret that contains another is masked whole.
        self.secrets = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern in TOKEN_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) or "") + MASK if m.re.groups else MASK, text)
        return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message, arguments, traceback) has passed the redactor."""

    def __init__(self, fmt: str, redactor: Redactor):
        super().__init__(fmt)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


def setup_logging(level: int, secrets: Iterable[object] = ()) -> Redactor:
    """Root logging to stderr through the redactor; returns it (for anything printed directly)."""
    redactor = Redactor(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", redactor))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)
    return redactor


def update_secrets(redactor: Redactor, secrets: Iterable[object]) -> None:
    """Add secrets known only after the settings were read."""
    merged = Redactor([*redactor.secrets, *secrets])
    redactor.secrets = merged.secrets
