"""The prompt format: how a poem is written for the model.

Training serialises every poem with `format_poem`; every backend builds its
prompt with `prompt_for` and reads the model's text back with `split_lines`.
This module is the only place that knows the format:

    <|5chu|>Mùa thu lá vàng rơi\nGió heo may về qua\n...\nlast line<|endoftext|>

A form tag (a special token) opens the poem, lines are separated by a newline
and the end-of-text token closes it. Stanza breaks are not written (the corpus
does not keep them); stanzas are four lines each.
"""

from __future__ import annotations

from engine.forms import FORM_IDS

FORM_TAGS: dict[str, str] = {form_id: f"<|{form_id}|>" for form_id in FORM_IDS}
END_OF_POEM = "<|endoftext|>"
LINE_SEPARATOR = "\n"
SPECIAL_TOKENS: tuple[str, ...] = (END_OF_POEM, *FORM_TAGS.values())
PROMPT_FORMAT_VERSION = 1


def format_poem(form_id: str, lines: list[str]) -> str:
    """One training example: the whole poem, closed by the end token."""
    return FORM_TAGS[form_id] + LINE_SEPARATOR.join(lines) + END_OF_POEM


def prompt_for(form_id: str, opening: str, opening_is_whole_line: bool) -> str:
    """What the model is given: the form tag and the user's opening words.

    A whole first line ends with the line separator, so the model starts the
    second line; a partial one ends mid-line, so the model completes it (its
    next word comes with its leading space, as in training text).
    """
    return FORM_TAGS[form_id] + opening + (LINE_SEPARATOR if opening_is_whole_line else "")


def split_lines(text: str) -> list[str]:
    """A poem's lines from model text, ignoring anything after the end token."""
    text = text.split(END_OF_POEM, 1)[0]
    for tag in FORM_TAGS.values():
        text = text.replace(tag, "")
    return [line.strip() for line in text.split(LINE_SEPARATOR) if line.strip()]
