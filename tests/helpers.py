"""Assertions and set-ups more than one test file makes."""

from __future__ import annotations

from bot.config import Settings
from engine.forms import LINES_PER_STANZA, get_form
from engine.prosody import syllables


def assert_form(poem, form_id: str, stanzas: int) -> None:
    """Exactly the form's number of lines, each with the form's number of syllables."""
    form = get_form(form_id)
    assert len(poem.lines) == stanzas * LINES_PER_STANZA, poem.lines
    for i, line in enumerate(poem.lines):
        lo, hi = form.length_of(i)
        assert lo <= len(syllables(line)) <= hi, (i, line, poem.lines)
    assert poem.scores.length == 1.0


def core_settings(model_dir, tmp_path, **extra) -> Settings:
    """A tiny model, a fresh database, a generous rate limit, no model watcher."""
    values = {"THO_MODEL": model_dir, "THO_DB": tmp_path / "tho.db", "THO_POEMS_PER_MINUTE": 100}
    return Settings(_env_file=None, THO_MODEL_WATCH_SECONDS=0, **{**values, **extra})
