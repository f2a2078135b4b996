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

_NARROW = frozenset("iIjl.,:;'|")
_SLIM = frozenset('frt()[]/\\-"!`')
_WIDE = frozenset("mwMW@%")
# Characters far wider than their kind, measured in DejaVu Sans Bold: (first, last, ems).
_WIDE_RANGES = (
    (0x01C4, 0x01CC, 1.7),  # DŽ, LJ, NJ: two letters in one
    (0x01F1, 0x01F3, 1.7),  # DZ
    (0x2030, 0x2031, 2.0),  # per mille, per ten thousand
    (0x2150, 0x218F, 1.8),  # number forms: Roman numerals, fractions
    (0x1400, 0x167F, 2.1),  # Canadian syllabics
    (0x18B0, 0x18FF, 2.1),
    (0x2E3A, 0x2E3B, 3.1),  # two- and three-em dashes
    (0xFDF0, 0xFDFC, 3.0),  # Arabic word ligatures
    (0xFDFD, 0xFDFD, 6.0),  # the basmala, one character
)
# By Unicode category, where nothing above says: on the wide side of each kind.
_BY_CATEGORY = {"Lu": 1.15, "Lt": 1.15, "Lo": 1.15, "Ll": 1.0, "Lm": 1.0, "Nd": 0.8}
_OTHER = 1.7  # symbols, marks of number, anything else: the widest seen of them
_PUNCTUATION = 1.0  # the ellipsis, dashes, quotes
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
    point = ord(char)
    for first, last, ems in _WIDE_RANGES:
        if first <= point <= last:
            return ems
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 1.3 if category == "So" else 1.1  # colour emoji; CJK
    if category.startswith("P"):
        return _PUNCTUATION
    return _BY_CATEGORY.get(category, _OTHER)


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
