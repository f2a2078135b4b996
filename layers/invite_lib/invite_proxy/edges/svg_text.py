"""Anyone's text in an SVG image: made safe for XML, measured, and cut to fit.

A guild's name is whatever its owner typed: markup, ``&``, emoji, right-to-left
script, 100 characters. An image cannot measure its own text (an ``<img>`` runs
nothing), so widths are estimated here from character classes, on the wide side of
the fonts a browser may pick (DejaVu Sans Bold, the widest common one): text cut to
fit this estimate fits whatever font draws it.
"""

from __future__ import annotations

import re
import unicodedata

ELLIPSIS = "\u2026"
# First-strong isolate and its end: a name keeps its own direction (Arabic, Hebrew) and
# does not reorder what is drawn after it.
_ISOLATE, _END_ISOLATE = "\u2068", "\u2069"
# What XML 1.0 does not allow at all (lone surrogates come from JSON's \\ud800 escapes).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_BLANKS = re.compile(r"\s+")
# Joiners and selectors that must not end a cut text: they would join the ellipsis.
_DANGLING = "\u200d\ufe0e\ufe0f"

_NARROW = frozenset("iIjl.,:;'|!`")
_SLIM = frozenset('frt()[]{}/\\-"')
_WIDE = frozenset("mwMW@%")
# A little over every width above, so an estimate errs on the wide side.
_MARGIN = 1.05
# The widths above are bold ones; a regular weight's are at most this much of them.
_REGULAR = 0.93


def clean(text: str) -> str:
    """The text with what XML cannot hold removed and runs of blanks made one space."""
    return _BLANKS.sub(" ", _NOT_XML.sub("", text)).strip()


def escape(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _em(char: str) -> float:
    """One character's advance in ems, at most what the widest common font gives it."""
    if char.isascii():
        if char == " ":
            return 0.38
        if char in _NARROW:
            return 0.38
        if char in _SLIM:
            return 0.52
        if char in _WIDE:
            return 1.12
        if char.isupper():
            return 0.86
        if char.isdigit() or char.islower():
            return 0.72
        return 0.86
    category = unicodedata.category(char)
    if category in ("Mn", "Me", "Cf"):
        return 0.0  # combining marks, joiners, direction marks
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 1.1  # CJK, and most emoji
    if category in ("So", "Sk", "Co"):
        return 1.35  # symbols and emoji drawn by a colour font, private-use glyphs
    return 0.9  # Latin with accents, Greek, Cyrillic, Arabic, Hebrew, ...


def _scale(font_size: float, bold: bool) -> float:
    return font_size * _MARGIN * (1.0 if bold else _REGULAR)


def width(text: str, font_size: float, *, bold: bool = False) -> float:
    """The widest the text can be drawn at ``font_size`` pixels."""
    return sum(_em(char) for char in text) * _scale(font_size, bold)


def fit(text: str, font_size: float, max_width: float, *, bold: bool = False) -> str:
    """The text, cut with an ellipsis where needed so that it fits ``max_width``."""
    text = clean(text)
    if width(text, font_size, bold=bold) <= max_width:
        return text
    kept: list[str] = []
    used = width(ELLIPSIS, font_size, bold=bold)
    for char in text:
        used += _em(char) * _scale(font_size, bold)
        if used > max_width:
            break
        kept.append(char)
    return "".join(kept).rstrip(_DANGLING).rstrip() + ELLIPSIS


def isolated(text: str) -> str:
    """Escaped, and drawn in its own direction whatever its script."""
    return _ISOLATE + escape(text) + _END_ISOLATE
