"""PNG pictures the bot sends: a poem card, and how sure the model was of each syllable.

Drawn with Pillow in the bot's process (call from a thread: a picture takes
tens of milliseconds). The fonts are the DejaVu faces that matplotlib ships,
so no system font is needed and every Vietnamese letter is covered, stacked
diacritics included (ằ, ỡ, ệ, Ẫ).

Layout: every picture is `CARD_WIDTH` wide and as tall as its content, a
stack of rows drawn top to bottom. Row heights come from the fonts' own
extents (ascent, descent, and the bounding box of tall capitals with two
diacritics), never from a guessed line height, so no mark is cut and no line
touches the next. A picture taller than its maximum (`MAX_CARD_HEIGHT`,
`MAX_EXPLANATION_HEIGHT`) is cut: the poem's last rows are dropped and a "…"
row says so; the title, legend and footer stay.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFont

from bot import texts
from engine.explain import Explanation, SyllableScore
from engine.forms import LINES_PER_STANZA

CARD_WIDTH = 1080
# Telegram accepts a photo up to 10000 px for width + height and a 1:20 ratio
# (and shows it at most 2560 px tall). A 4-stanza poem card is about 1500 px.
MAX_CARD_HEIGHT = 3 * CARD_WIDTH
# The longest poem the engine writes (4 stanzas of tự do, 12 syllables a line)
# with a focus on its last syllable (191 before it) is about 5000 px.
MAX_EXPLANATION_HEIGHT = 6 * CARD_WIDTH
MARGIN = 80
TEXT_WIDTH = CARD_WIDTH - 2 * MARGIN
INDENT = 48  # a wrapped line's continuation

PAPER = (251, 247, 238)
INK = (43, 38, 34)
MUTED = (125, 114, 102)
RULE = (205, 190, 165)
OPENING_FILL = (218, 216, 212)
FOCUS_OUTLINE = (28, 56, 140)

TITLE_SIZE = 46
POEM_SIZE = 38
FOOTER_SIZE = 26
SYLLABLE_SIZE = 30
CAPTION_SIZE = 19
STRIP_SIZE = 22  # the attention strip under the poem
STRIP_CAPTION_SIZE = 16

CUT_MARK = "…"

# matplotlib ships the DejaVu faces; one place says which file each style uses.
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT_FILES = {
    "serif": "DejaVuSerif.ttf",
    "bold": "DejaVuSerif-Bold.ttf",
    "italic": "DejaVuSerif-Italic.ttf",
    "sans": "DejaVuSans.ttf",
}
# The tallest and deepest letters a Vietnamese line can hold: capitals with two
# stacked marks reach above a font's ascent in some faces, dot-below reaches down.
TALL_LETTERS = "ẪỖỆẰẲÁÉ"
DEEP_LETTERS = "gjpqyỵỹ"

# Probabilities spread over orders of magnitude, so the colour follows their
# logarithm: 0.1% or less is the red end, 100% the green end.
LOWEST_PROBABILITY = 1e-3
LEGEND_TICKS = ((0.001, "0,1%"), (0.01, "1%"), (0.1, "10%"), (1.0, "100%"))


class FontMissing(RuntimeError):
    """A DejaVu font file is not where matplotlib keeps it."""


def font_path(style: str) -> Path:
    path = FONT_DIR / FONT_FILES[style]
    if not path.is_file():
        raise FontMissing(f"font {path} is missing: reinstall matplotlib, which ships the DejaVu fonts")
    return path


@lru_cache(maxsize=32)
def font(style: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(style)), size)


@lru_cache(maxsize=32)
def extent(face: ImageFont.FreeTypeFont) -> tuple[int, int]:
    """(above, below) the baseline that any Vietnamese text in this face can reach, in pixels."""
    ascent, descent = face.getmetrics()
    _, top, _, _ = face.getbbox(TALL_LETTERS, anchor="ls")
    _, _, _, bottom = face.getbbox(DEEP_LETTERS, anchor="ls")
    return max(ascent, -top), max(descent, bottom)


# --- layout: a picture is a stack of rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    height: int
    draw: Callable[[ImageDraw.ImageDraw, int], None]  # draws the row with its top at y


def gap(height: int) -> Row:
    return Row(height, lambda draw, y: None)


def text_row(text: str, face: ImageFont.FreeTypeFont, fill: tuple[int, int, int], x: int = 0) -> Row:
    """One line of text; the row's height holds its marks, plus a quarter of the size between lines."""
    above, below = extent(face)
    leading = face.size // 4

    def draw(canvas: ImageDraw.ImageDraw, y: int) -> None:
        canvas.text((MARGIN + x, y + above), text, font=face, fill=fill, anchor="ls")

    return Row(above + below + leading, draw)


def wrapped_rows(text: str, face: ImageFont.FreeTypeFont, fill: tuple[int, int, int]) -> list[Row]:
    return [text_row(line, face, fill, x) for line, x in wrap(text, face, TEXT_WIDTH)]


def wrap(text: str, face: ImageFont.FreeTypeFont, width: int) -> list[tuple[str, int]]:
    """(line, indent) rows of at most `width` px, broken between words; continuations indented."""
    rows: list[tuple[str, int]] = []
    current = ""
    for word in text.split():
        indent = INDENT if rows else 0
        candidate = f"{current} {word}" if current else word
        if face.getlength(candidate) <= width - indent:
            current = candidate
            continue
        if current:
            rows.append((current, indent))
            current = ""
        # A word wider than a whole row (no poem has one, but users type anything) is cut into pieces.
        for piece in break_word(word, face, width - INDENT):
            if current:
                rows.append((current, INDENT if rows else 0))
            current = piece
    if current or not rows:
        rows.append((current, INDENT if rows else 0))
    return rows


def break_word(word: str, face: ImageFont.FreeTypeFont, width: int) -> list[str]:
    pieces = [""]
    for ch in word:
        if pieces[-1] and face.getlength(pieces[-1] + ch) > width:
            pieces.append("")
        pieces[-1] += ch
    return pieces


def compose(head: Sequence[Row], body: Sequence[Row], foot: Sequence[Row], max_height: int = MAX_CARD_HEIGHT) -> bytes:
    """The PNG of the rows stacked between margins; the body is cut (with a "…" row) past `max_height`."""
    fixed = 2 * MARGIN + sum(r.height for r in head) + sum(r.height for r in foot)
    rows = list(body)
    if fixed + sum(r.height for r in rows) > max_height:
        mark = text_row(CUT_MARK, font("serif", POEM_SIZE), MUTED)
        while rows and fixed + sum(r.height for r in rows) + mark.height > max_height:
            rows.pop()
        rows.append(mark)
    stack = [*head, *rows, *foot]
    image = Image.new("RGB", (CARD_WIDTH, 2 * MARGIN + sum(r.height for r in stack)), PAPER)
    canvas = ImageDraw.Draw(image)
    y = MARGIN
    for row in stack:
        row.draw(canvas, y)
        y += row.height
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def rule_row(width: int = 120) -> Row:
    """A short ornamental line under a title."""

    def draw(canvas: ImageDraw.ImageDraw, y: int) -> None:
        canvas.line([(MARGIN, y + 8), (MARGIN + width, y + 8)], fill=RULE, width=3)

    return Row(40, draw)


# --- the poem card ----------------------------------------------------------------------------------------------------


def render_poem(title: str, text: str, form_title: str, author: str) -> bytes:
    """A poem card: bold title, the poem (stanzas apart as in `text`'s blank lines), an italic footer."""
    head = [*wrapped_rows(title, font("bold", TITLE_SIZE), INK), rule_row()]
    foot = [gap(POEM_SIZE // 2), *wrapped_rows(f"{form_title} · {author}", font("italic", FOOTER_SIZE), MUTED)]
    return compose(head, poem_rows(text), foot)


def poem_rows(text: str) -> list[Row]:
    """The poem's lines, wrapped; blank lines (one or several) become one stanza gap."""
    face = font("serif", POEM_SIZE)
    rows: list[Row] = []
    blank = False
    for line in text.strip("\n").split("\n"):
        if not line.strip():
            blank = True
            continue
        if blank and rows:
            rows.append(gap(POEM_SIZE))
        blank = False
        rows.extend(wrapped_rows(line.strip(), face, INK))
    return rows


# --- how sure the model was -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A syllable in a rounded box, a small caption under it."""

    text: str
    caption: str
    fill: tuple[int, int, int]
    outline: tuple[int, int, int] | None = None
    size: int = SYLLABLE_SIZE
    caption_size: int = CAPTION_SIZE
    new_line: bool = False  # the first syllable of a poem line: a "/" marks the break in a flow of syllables

    PAD_X = 12
    PAD_Y = 8
    RADIUS = 12
    SPACING = 10  # between boxes, across and down
    BREAK_WIDTH = 28  # the "/" between two lines' syllables

    @property
    def faces(self) -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont]:
        return font("sans", self.size), font("sans", self.caption_size)

    @property
    def width(self) -> int:
        words, captions = self.faces
        return math.ceil(max(words.getlength(self.text), captions.getlength(self.caption))) + 2 * Box.PAD_X

    @property
    def height(self) -> int:
        words, captions = self.faces
        return 2 * Box.PAD_Y + sum(extent(words)) + sum(extent(captions))

    def draw(self, canvas: ImageDraw.ImageDraw, x: int, y: int) -> None:
        words, captions = self.faces
        right, bottom = x + self.width, y + self.height
        canvas.rounded_rectangle((x, y, right, bottom), Box.RADIUS, fill=self.fill)
        if self.outline:
            # Drawn around the box, not on it: the box keeps its colour.
            canvas.rounded_rectangle(
                (x - 4, y - 4, right + 4, bottom + 4), Box.RADIUS + 4, outline=self.outline, width=3
            )
        ink = text_colour(self.fill)
        centre = (x + right) / 2
        baseline = y + Box.PAD_Y + extent(words)[0]
        canvas.text((centre, baseline), self.text, font=words, fill=ink, anchor="ms")
        caption_baseline = baseline + extent(words)[1] + extent(captions)[0]
        canvas.text((centre, caption_baseline), self.caption, font=captions, fill=ink, anchor="ms")


def box_rows(boxes: Sequence[Box]) -> list[Row]:
    """Boxes flowed left to right, wrapped to the text width; continuation rows indented."""
    rows: list[list[Box]] = [[]]
    used = 0
    for box in boxes:
        indent = INDENT if len(rows) > 1 else 0
        needs = box.width + (Box.BREAK_WIDTH if box.new_line and rows[-1] else 0)
        if rows[-1] and indent + used + needs > TEXT_WIDTH:
            rows.append([])
            used, needs = 0, box.width
        rows[-1].append(box)
        used += needs + Box.SPACING
    return [box_row(row, INDENT if i else 0) for i, row in enumerate(rows)]


def box_row(boxes: Sequence[Box], indent: int) -> Row:
    margin = 5  # room for a focus outline around a box

    def draw(canvas: ImageDraw.ImageDraw, y: int) -> None:
        x = MARGIN + indent
        for i, box in enumerate(boxes):
            if box.new_line and i:
                mid = y + margin + box.height / 2
                canvas.text((x + Box.BREAK_WIDTH / 2, mid), "/", font=font("sans", box.size), fill=MUTED, anchor="mm")
                x += Box.BREAK_WIDTH
            box.draw(canvas, x, y + margin)
            x += box.width + Box.SPACING

    return Row(max(box.height for box in boxes) + 2 * margin + Box.SPACING, draw)


def render_explanation(explanation: Explanation, focus: tuple[int, int] | None = None) -> bytes:
    """Each syllable coloured by the model's probability (grey: the user's opening).

    `focus` (line, syllable), 1-based: that syllable is outlined and a strip
    under the poem shows the attention it paid to each earlier syllable.
    Raises IndexError for a syllable the poem does not have.
    """
    head = [text_row(texts.EXPLAIN_TITLE, font("bold", TITLE_SIZE - 6), INK), rule_row()]
    body: list[Row] = []
    for li, line in enumerate(explanation.lines, start=1):
        if li > 1 and (li - 1) % LINES_PER_STANZA == 0:
            body.append(gap(2 * Box.SPACING))  # stanzas apart, as in the poem
        body.extend(box_rows([probability_box(s, focus == (li, si)) for si, s in enumerate(line, start=1)]))
    foot = [gap(Box.SPACING), legend_row()]
    if focus is not None:
        foot += [gap(POEM_SIZE // 2), *focus_rows(explanation, focus)]
    mean = explanation.mean_probability
    shown_mean = percent(mean) if mean is not None else "–"
    footer = texts.EXPLAIN_FOOTER.format(version=explanation.model_version, mean=shown_mean)
    foot += [gap(POEM_SIZE // 2), *wrapped_rows(footer, font("italic", FOOTER_SIZE), MUTED)]
    return compose(head, body, foot, MAX_EXPLANATION_HEIGHT)


def probability_box(score: SyllableScore, focused: bool) -> Box:
    fill = probability_colour(score.probability) if score.generated else OPENING_FILL
    return Box(score.text, percent(score.probability), fill, FOCUS_OUTLINE if focused else None)


def focus_rows(explanation: Explanation, focus: tuple[int, int]) -> list[Row]:
    """The heat strip: the earlier syllables in order, shaded by the share of attention each got.

    Its boxes are smaller than the poem's: a 4-stanza poem's last syllable has
    over a hundred before it.
    """
    weights = explanation.attention(*focus)  # first: an IndexError before any drawing
    line, index = focus
    syllable = explanation.lines[line - 1][index - 1].text
    title = wrapped_rows(texts.FOCUS_TITLE.format(syllable=syllable, line=line, index=index), font("bold", 30), INK)
    earlier = [
        (score, weights[li][si], si == 0)
        for li, scores in enumerate(explanation.lines)
        for si, score in enumerate(scores)
        if (li + 1, si + 1) < focus
    ]
    if not earlier:
        return [*title, text_row(texts.FOCUS_NOTHING_BEFORE, font("italic", FOOTER_SIZE), MUTED)]
    top = max(w for _, w, _ in earlier) or 1.0
    boxes = [
        Box(s.text, percent(w), attention_colour(w / top), size=STRIP_SIZE, caption_size=STRIP_CAPTION_SIZE, new_line=b)
        for s, w, b in earlier
    ]
    return [*title, *box_rows(boxes)]


def legend_row() -> Row:
    """A colour bar from unsure to sure with its ticks, and the grey swatch of the opening."""
    captions = font("sans", CAPTION_SIZE)
    above, below = extent(captions)
    bar_width, bar_height, space = 360, 22, 12

    def draw(canvas: ImageDraw.ImageDraw, y: int) -> None:
        mid = y + bar_height / 2
        canvas.text((MARGIN, mid), texts.LEGEND_LOW, font=captions, fill=MUTED, anchor="lm")
        x0 = MARGIN + round(captions.getlength(texts.LEGEND_LOW)) + space
        for i in range(bar_width):
            p = LOWEST_PROBABILITY ** (1 - i / (bar_width - 1))
            canvas.line([(x0 + i, y), (x0 + i, y + bar_height)], fill=probability_colour(p))
        for tick, label in LEGEND_TICKS:
            tx = x0 + round(probability_position(tick) * (bar_width - 1))
            canvas.text((tx, y + bar_height + 4 + above), label, font=captions, fill=MUTED, anchor="ms")
        x = x0 + bar_width + space
        canvas.text((x, mid), texts.LEGEND_HIGH, font=captions, fill=MUTED, anchor="lm")
        x += round(captions.getlength(texts.LEGEND_HIGH)) + 4 * space
        canvas.rounded_rectangle((x, y, x + 36, y + bar_height), 6, fill=OPENING_FILL)
        canvas.text((x + 36 + space, mid), texts.LEGEND_OPENING, font=captions, fill=MUTED, anchor="lm")

    return Row(bar_height + 4 + above + below + Box.SPACING, draw)


# --- colours and numbers ----------------------------------------------------------------------------------------------


def probability_position(p: float) -> float:
    """Where a probability sits on the colour ramp, 0 (LOWEST_PROBABILITY or less) to 1 (certain)."""
    p = min(1.0, max(LOWEST_PROBABILITY, p))
    return math.log(p / LOWEST_PROBABILITY) / math.log(1 / LOWEST_PROBABILITY)


def probability_colour(p: float) -> tuple[int, int, int]:
    # RdYlGn's ends are dark; the middle 80%, lightened, keeps dark text readable on every box.
    return colormap_colour("RdYlGn", 0.1 + 0.8 * probability_position(p), lighten=0.3)


def attention_colour(share: float) -> tuple[int, int, int]:
    """`share` of the most-looked-at syllable's attention, 0 to 1: pale to deep blue."""
    return colormap_colour("Blues", 0.08 + 0.8 * share, lighten=0.0)


def colormap_colour(name: str, t: float, lighten: float) -> tuple[int, int, int]:
    r, g, b, _ = matplotlib.colormaps[name](t)

    def channel(c: float) -> int:
        return round(255 * (c + (1 - c) * lighten))

    return channel(r), channel(g), channel(b)


def text_colour(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    """Dark text on light boxes, white on dark ones (perceived luminance)."""
    r, g, b = fill
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def percent(p: float) -> str:
    """A probability as Vietnamese write it: 42%, 4,2%, 0,4%, <0,1%."""
    value = 100 * p
    if value >= 9.95:
        return f"{value:.0f}%"
    if value >= 0.1:
        return f"{value:.1f}%".replace(".", ",")
    return "<0,1%"
