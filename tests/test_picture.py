"""bot.picture: poem cards and "how sure was the model" pictures, checked pixel by pixel where it matters."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from PIL import Image

from bot import picture
from bot.picture import CARD_WIDTH, MAX_CARD_HEIGHT, PAPER, render_explanation, render_poem
from engine.explain import Explainer

STANZA = "Mùa thu lá vàng rơi\nGió heo may về qua\nEm đi trên phố vắng\nNhớ mãi một người xa"
LONG_LINE = " ".join(["Chiều nay em đứng bên dòng sông vắng nghe tiếng chuông chùa vọng giữa hoàng hôn"] * 3)
VIETNAMESE_MARKS = "ằỡệẪƯđ"


def image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def card(text: str) -> Image.Image:
    return image(render_poem("Thu Hà Nội", text, "Năm chữ", "Thơ bot"))


def ink_bands(im: Image.Image, join: int = 6) -> list[tuple[int, int]]:
    """Runs of pixel rows that hold anything but paper (anti-aliasing included), top to bottom.

    Runs less than `join` rows apart are one band: a mark floats a few pixels
    over its letter ("ỹ"), a dot below under it ("ỵ"), and they are one line.
    """
    inked = (np.asarray(im) != np.array(PAPER)).any(axis=(1, 2))
    bands: list[tuple[int, int]] = []
    for y in np.flatnonzero(inked):
        if bands and y - bands[-1][1] <= join:
            bands[-1] = (bands[-1][0], int(y))
        else:
            bands.append((int(y), int(y)))
    return bands


def only_paper(im: Image.Image, box: tuple[int, int, int, int]) -> bool:
    return bool((np.asarray(im.crop(box)) == np.array(PAPER)).all())


def test_a_poem_card_is_a_png_as_wide_as_the_card_and_grows_with_the_poem():
    one, two = card(STANZA), card(f"{STANZA}\n\n{STANZA}")
    assert one.width == two.width == CARD_WIDTH
    assert two.height > one.height


@pytest.mark.parametrize("long", [LONG_LINE, "Ẫ" + "xyzqw" * 60], ids=["words", "one-word"])
def test_a_long_line_is_wrapped_inside_the_card(long):
    short, wrapped = card(STANZA), card(STANZA.replace("Gió heo may về qua", long))
    assert wrapped.height > short.height
    w, h = wrapped.size
    assert only_paper(wrapped, (w - 10, 0, w, h)), "something drawn in the right margin"
    assert only_paper(wrapped, (0, h - 10, w, h)), "something drawn in the bottom margin"


def test_stacked_diacritics_never_touch_the_line_above_or_below():
    # Tall capitals with two marks on one line, deep letters with dots below on the next.
    lines = ["ẪỖỆẰ Ẫn ẳng", "gỵ ỹ jpq gặp"] * 4
    im = card("\n".join(lines))
    # The title, its rule, one band per line and the footer: no line ran into another.
    bands = ink_bands(im)
    assert len(bands) == 2 + len(lines) + 1, bands
    assert only_paper(im, (0, 0, im.width, 10))


def test_a_poem_too_long_for_one_picture_is_cut_to_the_maximum_height():
    im = card("\n\n".join([STANZA] * 40))
    assert im.width == CARD_WIDTH and im.height <= MAX_CARD_HEIGHT
    assert only_paper(im, (0, im.height - 10, im.width, im.height))


@pytest.mark.parametrize("style", sorted(picture.FONT_FILES))
def test_every_font_has_every_vietnamese_letter(style):
    path = picture.font_path(style)
    cmap = TTFont(path).getBestCmap()
    assert all(ord(ch) in cmap for ch in VIETNAMESE_MARKS)
    # And Pillow draws each one, not the .notdef box (a private-use character has no glyph).
    face = picture.font(style, 40)
    notdef = face.getmask("\U0010fffd")
    for ch in VIETNAMESE_MARKS:
        mask = face.getmask(ch)
        assert mask.getbbox() is not None
        assert (mask.size, bytes(mask)) != (notdef.size, bytes(notdef)), ch


def test_a_missing_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(picture, "FONT_DIR", tmp_path)
    with pytest.raises(picture.FontMissing, match="DejaVuSerif.ttf"):
        picture.font_path("serif")


@pytest.fixture(scope="module")
def explanation(tiny_model_dir):
    lines = ["Mùa thu lá vàng rơi, Xyzqw", "Gió heo may về qua", "Em đi trên phố vắng", "Nhớ mãi một người xa"]
    return asyncio.run(Explainer().explain(tiny_model_dir, "5chu", lines, "Mùa thu lá"))


def test_an_explanation_picture_with_and_without_a_focus(explanation):
    plain, focused = image(render_explanation(explanation)), image(render_explanation(explanation, (3, 2)))
    assert plain.width == focused.width == CARD_WIDTH
    assert focused.height > plain.height  # the attention strip under the poem
    for im in (plain, focused):
        w, h = im.size
        assert only_paper(im, (w - 10, 0, w, h)) and only_paper(im, (0, h - 10, w, h))


def test_the_first_syllable_has_nothing_before_it_to_look_at(explanation):
    assert image(render_explanation(explanation, (1, 1))).width == CARD_WIDTH


def test_a_focus_on_a_syllable_the_poem_lacks_is_an_index_error(explanation):
    with pytest.raises(IndexError):
        render_explanation(explanation, (9, 1))
