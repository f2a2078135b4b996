"""An invite as one self-contained SVG image: `/invites/{code}/card.svg` and
`/guilds/{guild_id}/card.svg`, for places that run no script (READMEs, forums, mail).

The card the component draws: the guild's icon (embedded, as an ``<img>`` loads
nothing else) or its initials, its name, online and member counts, the channel,
when the invite expires, its scheduled event, and a "Join" label. Every piece of
anyone's text is escaped and cut to its box (edges/svg_text.py). Times are absolute
(UTC): an image is kept by caches and cannot count down.

Every answer is an image a page can show: an invite the proxy cannot find is the
"invalid invite" card, and a moment the proxy cannot say is an "unavailable" card
no cache keeps. The image carries no script and its Content-Security-Policy allows
none, so opening its URL runs nothing, whatever a guild is called.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from invite_proxy.domain.errors import InvalidInput, InviteProxyError, UnknownInvite
from invite_proxy.domain.icons import FAILURE_HOLD_SECONDS, icon_of
from invite_proxy.edges.badges import compact_count
from invite_proxy.edges.http_responses import Response, retry_after, status_for
from invite_proxy.edges.svg_text import clean, escape, fit, isolated, width
from invite_proxy.services.lookup import LookupResult

MEDIA_TYPE = "image/svg+xml; charset=utf-8"
# Nothing but the card's own embedded icon: no script, no fetch, no font, no style sheet.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:",
    "X-Content-Type-Options": "nosniff",
}
FONTS = "'gg sans','Noto Sans','Helvetica Neue',Helvetica,Arial,sans-serif"

WIDTH = 432
HEIGHT = 120
EVENT_HEIGHT = 24  # a line more, when the invite names a scheduled event
PAD = 16
ICON = 56
TEXT_X = PAD + ICON + 12
JOIN_WIDTH, JOIN_HEIGHT = 72, 36
TEXT_WIDTH = WIDTH - TEXT_X - PAD - JOIN_WIDTH - 8  # the name and lines beside the icon
EVENT_WIDTH = WIDTH - 2 * PAD
LINE_WIDTH = WIDTH - TEXT_X - PAD  # the line below "Join"
# Where anyone's text may be drawn: beside the icon (short of "Join"), and the lines below.
# Text is cut to fit these by estimate; the clips hold for a glyph wider than estimated.
BESIDE, BELOW = "url(#beside)", "url(#below)"
CLIPS = (
    f'<clipPath id="beside"><rect x="{TEXT_X}" y="44" width="{TEXT_WIDTH}" height="{ICON}"/>'
    f'</clipPath><clipPath id="below"><rect x="{PAD}" y="92" width="{WIDTH - 2 * PAD}" '
    f'height="{HEIGHT + EVENT_HEIGHT - 92}"/></clipPath>'
)


@dataclass(frozen=True, slots=True)
class Theme:
    background: str
    border: str
    text: str
    muted: str
    placeholder: str
    placeholder_text: str
    invalid: str


# Discord's own colours for its invite embed; both pass WCAG AA for their text.
THEMES = {
    "dark": Theme("#2b2d31", "#1e1f22", "#f2f3f5", "#b5bac1", "#5865f2", "#ffffff", "#fa777c"),
    "light": Theme("#f2f3f5", "#e3e5e8", "#060607", "#4e5058", "#5865f2", "#ffffff", "#c9282d"),
}
ONLINE, MEMBERS, JOIN = "#23a55a", "#80848e", "#248046"


def _initials(name: str) -> str:
    """Discord's stand-in for no icon: each word's first letter, five at most."""
    return "".join(word[0] for word in name.split()[:5]) or "?"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> str | None:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else None


def _when(value: Any) -> str | None:
    """An ISO time as 'Dec 5, 14:00 UTC'."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # not a time, or one UTC cannot hold (year 1)
        return None
    return f"{moment:%b} {moment.day}, {moment:%H:%M} UTC"


def _text(x: float, y: float, body: str, size: float, fill: str, **more: str | int) -> str:
    attributes = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in more.items())
    return f'<text x="{x}" y="{y}" font-size="{size}" fill="{fill}"{attributes}>{body}</text>'


def _frame(theme: Theme, height: int, title: str, inner: list[str]) -> str:
    return "".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="title" '
            f'font-family="{escape(FONTS)}">',
            f'<title id="title">{escape(clean(title))}</title>',
            f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{height - 1}" rx="8" '
            f'fill="{theme.background}" stroke="{theme.border}"/>',
            *inner,
            "</svg>",
        ]
    )


def _icon(theme: Theme, name: str, icon: bytes | None, fill: str | None = None) -> list[str]:
    y = 44
    if icon is not None:
        data = base64.b64encode(icon).decode("ascii")
        return [
            f'<clipPath id="icon"><rect x="{PAD}" y="{y}" width="{ICON}" height="{ICON}" '
            'rx="16"/></clipPath>',
            f'<image x="{PAD}" y="{y}" width="{ICON}" height="{ICON}" clip-path="url(#icon)" '
            f'preserveAspectRatio="xMidYMid slice" href="data:image/png;base64,{data}"/>',
        ]
    letters = _initials(clean(name))
    size = min(18.0, 18 * (ICON - 8) / max(1.0, width(letters, 18, bold=True)))
    size = round(max(size, 11.0), 1)  # shrunk to fit, as Discord shrinks them; then cut
    letters = fit(letters, size, ICON - 8, bold=True)
    return [
        f'<rect x="{PAD}" y="{y}" width="{ICON}" height="{ICON}" rx="16" '
        f'fill="{fill or theme.placeholder}"/>',
        _text(
            PAD + ICON / 2,
            y + ICON / 2 + size / 3,
            isolated(letters),
            size,
            theme.placeholder_text,
            font_weight=600,
            text_anchor="middle",
        ),
    ]


def _header(theme: Theme, words: str) -> str:
    return _text(PAD, 28, words, 12, theme.muted, font_weight=700, letter_spacing="0.02em")


def _counts(theme: Theme, invite: Mapping[str, Any]) -> list[str]:
    """Online and members, each after its dot: in full (1,234) where that fits, else as
    the badge has them (1.2k)."""
    counts = [
        (invite.get(field), label, colour)
        for field, label, colour in (
            ("approximate_presence_count", "Online", ONLINE),
            ("approximate_member_count", "Members", MEMBERS),
        )
        if _count(invite.get(field)) is not None
    ]
    for shown in (_count, compact_count):
        words = [f"{shown(value)} {label}" for value, label, _ in counts]
        if sum(12 + width(w, 13) for w in words) + 10 * (len(words) - 1) <= TEXT_WIDTH:
            break
    parts, x = [], float(TEXT_X)
    for text, (_, _, colour) in zip(words, counts, strict=True):
        room = TEXT_X + TEXT_WIDTH - x - 12
        if room < width("0 …", 13):
            break  # no room left for even a digit: drawn not at all, rather than as "…"
        text = fit(text, 13, room)
        parts.append(f'<circle cx="{x + 4}" cy="82" r="4" fill="{colour}"/>')
        parts.append(_text(x + 12, 87, escape(text), 13, theme.muted, clip_path=BESIDE))
        x += 12 + width(text, 13) + 10
    return parts


def _where(invite: Mapping[str, Any]) -> str:
    """'#channel · Expires Dec 5, 14:00 UTC': the channel's name gets what the time leaves."""
    expires = _when(invite.get("expires_at"))
    life = escape(f"Expires {expires}" if expires else "Never expires")
    channel = clean(str(_mapping(invite.get("channel")).get("name") or ""))
    room = LINE_WIDTH - width(f"# · {life}", 12)
    if not channel or room < 24:
        return life
    return f"#{isolated(fit(channel, 12, room))} · {life}"


def invite_card(invite: Mapping[str, Any], theme_name: str, icon: bytes | None) -> str:
    theme = THEMES[theme_name]
    guild = _mapping(invite.get("guild"))
    name = str(guild.get("name") or "A Discord server")
    parts = [
        CLIPS,
        _header(theme, "YOU&#39;VE BEEN INVITED TO JOIN A SERVER"),
        *_icon(theme, name, icon),
        _text(
            TEXT_X,
            66,
            isolated(fit(name, 16, TEXT_WIDTH, bold=True)),
            16,
            theme.text,
            font_weight=700,
            clip_path=BESIDE,
        ),
        *_counts(theme, invite),
        _text(TEXT_X, 106, _where(invite), 12, theme.muted, clip_path=BELOW),
    ]
    join_x, join_y = WIDTH - PAD - JOIN_WIDTH, 44 + (ICON - JOIN_HEIGHT) // 2
    parts.append(
        f'<rect x="{join_x}" y="{join_y}" width="{JOIN_WIDTH}" height="{JOIN_HEIGHT}" rx="4" '
        f'fill="{JOIN}"/>'
    )
    parts.append(
        _text(
            join_x + JOIN_WIDTH / 2,
            join_y + 23,
            "Join",
            14,
            "#ffffff",
            font_weight=600,
            text_anchor="middle",
        )
    )
    height = HEIGHT
    event = invite.get("guild_scheduled_event")
    if isinstance(event, Mapping) and event.get("name"):
        start = _when(event.get("scheduled_start_time"))
        words = f"Event: {event['name']}" + (f", {start}" if start else "")
        line = isolated(fit(words, 13, EVENT_WIDTH))
        parts.append(_text(PAD, HEIGHT + 8, line, 13, theme.text, clip_path=BELOW))
        height += EVENT_HEIGHT
    online = _count(invite.get("approximate_presence_count"))
    members = _count(invite.get("approximate_member_count"))
    counted = ", ".join(f"{c} {w}" for c, w in ((members, "members"), (online, "online")) if c)
    title = f"Invite to {name[:200]}" + (f": {counted}" if counted else "")
    return _frame(theme, height, title, parts)


def notice_card(theme_name: str, heading: str, message: str) -> str:
    """The card for no invite to show: invalid, or unavailable for now."""
    theme = THEMES[theme_name]
    parts = [
        _header(theme, "AN INVITE, BUT&#8230;"),
        *_icon(theme, "?", None, fill=theme.border),
        _text(TEXT_X, 66, escape(heading), 16, theme.invalid, font_weight=700),
        _text(TEXT_X, 88, escape(fit(message, 12, LINE_WIDTH)), 12, theme.muted),
    ]
    return _frame(theme, HEIGHT, f"{heading}: {message}", parts)


def _response(status: int, svg: str, cache_control: str, **more: str) -> Response:
    headers = {**SECURITY_HEADERS, "Cache-Control": cache_control, **more}
    return Response(status, svg, headers, content_type=MEDIA_TYPE)


INVALID = ("Invalid invite", "This invite has expired or does not exist.")


def card_response(
    result: LookupResult, invite: Mapping[str, Any] | None, theme: str, icon: bytes | None
) -> Response:
    """The card of ``invite`` (the result's body), kept by caches as long as the proxy
    says the invite is fresh (less, if its icon could not be had: it is drawn again with
    the icon once the fetch is tried again)."""
    fresh = result.fresh_for
    status = {"X-Cache": result.cache_status.value}
    if invite is None:
        return _response(200, notice_card(theme, *INVALID), f"public, max-age={fresh}", **status)
    if icon is None and icon_of(invite) is not None:
        fresh = min(fresh, int(FAILURE_HOLD_SECONDS))
    return _response(200, invite_card(invite, theme, icon), f"public, max-age={fresh}", **status)


def error_card(exc: InviteProxyError, theme: str) -> Response:
    """A card for a failure: a bad request says what was wrong (400); anything else is
    the "unavailable" card, a 200 so READMEs show it, that no cache keeps."""
    if isinstance(exc, UnknownInvite):
        return _response(200, notice_card(theme, *INVALID), "no-store")
    if isinstance(exc, InvalidInput):
        status = status_for(exc)
        return _response(
            status, notice_card(theme, "Invalid request", exc.public_message), "no-store"
        )
    more = {"Retry-After": retry_after(exc.retry_after)} if exc.retry_after else {}
    message = "The proxy cannot say just now; try again later."
    return _response(200, notice_card(theme, "Invite unavailable", message), "no-store", **more)
