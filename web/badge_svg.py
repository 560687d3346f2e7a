"""A shields-style flat badge as SVG: a grey label and a coloured value, sized from their text.

Pure functions, no Flask. A badge is drawn without knowing which fonts the reader has, so its width
comes from an estimate of the text at 11px Verdana (shields.io's font), per character: Verdana's own
advance widths for ASCII, one em for East Asian wide and full-width characters (Chinese), none for
combining marks, an average for the rest. `textLength` then fits whatever font draws it to that width,
so a badge never clips or leaves a gap. Every text is escaped and stripped of characters XML cannot
hold; nothing in it comes from elsewhere, and it carries no script, link or style.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from xml.sax.saxutils import escape

HEIGHT = 20
PADDING = 5  # on each side of a text
FONT_SIZE = 11
FONT = "Verdana,Geneva,DejaVu Sans,Noto Sans CJK SC,PingFang SC,Microsoft YaHei,sans-serif"
MAX_TEXT = 60  # characters shown of a label or value (a title keeps more)
MAX_TITLE = 300
LABEL_COLOR = "#555"
COLORS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "lightgrey": "#9f9f9f",
}
# Verdana's advance widths at 11px for printable ASCII, from space (0x20) to tilde (0x7e).
_ASCII_WIDTHS = (
    3.87, 4.33, 5.05, 9.0, 7.0, 11.84, 7.99, 2.95, 4.99, 4.99, 7.0, 9.0, 4.0, 4.99, 4.0, 4.99,
    7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 4.99, 4.99, 9.0, 9.0, 9.0, 6.0,
    11.0, 7.52, 7.54, 7.68, 8.48, 6.96, 6.32, 8.53, 8.27, 4.63, 5.0, 7.62, 6.12, 9.27, 8.23, 8.66,
    6.63, 8.66, 7.65, 7.52, 6.78, 8.05, 7.52, 10.87, 7.53, 6.77, 7.53, 4.99, 4.99, 4.99, 9.0, 7.0,
    7.0, 6.61, 6.85, 5.73, 6.85, 6.55, 3.87, 6.85, 6.96, 3.02, 3.79, 6.51, 3.02, 10.7, 6.96, 6.68,
    6.85, 6.85, 4.69, 5.73, 4.33, 6.96, 6.51, 8.98, 6.51, 6.51, 5.83, 6.98, 4.99, 6.98, 9.0,
)  # fmt: skip
_OTHER_WIDTH = 7.0
# What XML 1.0 cannot hold at all (control characters, lone surrogates, U+FFFE and U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Badge:
    label: str
    value: str
    color: str  # a name in COLORS
    title: str  # the sentence a screen reader says and a mouse shows


def char_width(char: str) -> float:
    code = ord(char)
    if 0x20 <= code <= 0x7E:
        return _ASCII_WIDTHS[code - 0x20]
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0.0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return float(FONT_SIZE)
    return _OTHER_WIDTH


def text_width(text: str) -> float:
    """The estimated width of `text` at 11px, in pixels."""
    return sum(char_width(char) for char in text)


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """`text` as a badge may show it: one line, no character XML refuses, at most `limit` characters."""
    one_line = " ".join(_NOT_XML.sub("", text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _xml(text: str) -> str:
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def _text(text: str, centre: float, width: float) -> str:
    """A text with its shadow, centred at `centre`, drawn to exactly `width`."""
    shown, x, length = _xml(text), f"{centre:.1f}", f"{width:.1f}"
    fit = f'textLength="{length}" lengthAdjust="spacingAndGlyphs"'
    return (
        f'<text aria-hidden="true" x="{x}" y="15" fill="#010101" fill-opacity=".3" {fit}>{shown}</text>'
        f'<text x="{x}" y="14" {fit}>{shown}</text>'
    )


def render(badge: Badge, lang: str = "en") -> str:
    """The badge as a standalone SVG document."""
    label, value, title = clean(badge.label), clean(badge.value), clean(badge.title, MAX_TITLE)
    label_text, value_text = text_width(label), text_width(value)
    label_box = math.ceil(label_text) + 2 * PADDING
    value_box = math.ceil(value_text) + 2 * PADDING
    width = label_box + value_box
    color = COLORS.get(badge.color, COLORS["lightgrey"])
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" '
        f'viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{_xml(title)}" xml:lang="{_xml(lang)}">'
        f"<title>{_xml(title)}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        '<g clip-path="url(#r)">'
        f'<rect width="{label_box}" height="{HEIGHT}" fill="{LABEL_COLOR}"/>'
        f'<rect x="{label_box}" width="{value_box}" height="{HEIGHT}" fill="{color}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-family="{FONT}" font-size="{FONT_SIZE}">'
        f"{_text(label, label_box / 2, label_text)}{_text(value, label_box + value_box / 2, value_text)}"
        "</g></svg>"
    )
