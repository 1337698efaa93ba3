"""Assertions more than one test file makes."""

from __future__ import annotations

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
