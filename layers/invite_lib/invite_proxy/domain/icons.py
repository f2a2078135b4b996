"""Guild icons as the proxy serves them: the file a request names, the icon an invite
shows, and what Discord's CDN must send back for it to be served.

An icon is named by its hash, and a new icon gets a new hash, so a file once served
never changes: it is kept by its hash and answered as immutable. Only the icon an
invite the proxy answers shows now is ever fetched (the proxy is nobody's open image
relay), at one size, as a PNG (a GIF for an animated one), and no larger than
``MAX_ICON_BYTES``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from invite_proxy.domain.errors import InvalidInput, UnknownIcon

# Covers the card's 56 CSS pixels on a 2x screen; one size, so one copy per icon.
ICON_SIZE = 128
# Discord's 128-pixel icons are a few kB (an animated one some tens); a table item holds 400 kB.
MAX_ICON_BYTES = 256 * 1024
# How long the table keeps a fetched icon, from its fetch: an icon never changes, so
# this only bounds what the table holds (one still in use is fetched again after it).
KEEP_SECONDS = 30 * 86_400
# How long an instance answers from a failed fetch before it asks the CDN again.
FAILURE_HOLD_SECONDS = 60.0

_HASH = re.compile(r"^(a_)?[0-9a-f]{32}$")
_MAGIC = {"png": (b"\x89PNG\r\n\x1a\n",), "gif": (b"GIF87a", b"GIF89a")}
MEDIA_TYPES = {"png": "image/png", "gif": "image/gif"}


@dataclass(frozen=True, slots=True)
class IconFile:
    """``<hash>.png`` (any icon, still) or ``<hash>.gif`` (an animated one, ``a_<hash>``)."""

    hash: str
    format: str

    @classmethod
    def parse(cls, file: str) -> IconFile:
        hash_, _, format_ = file.rpartition(".")
        if not _HASH.match(hash_) or format_ not in _MAGIC:
            raise InvalidInput(
                "An icon is <hash>.png, or <hash>.gif for an animated one (a_<hash>).",
                detail=f"bad icon file {file[:80]!r}",
            )
        if format_ == "gif" and not hash_.startswith("a_"):
            raise InvalidInput("Only an animated icon (a_<hash>) has a GIF; ask for .png.")
        return cls(hash_, format_)

    @property
    def name(self) -> str:
        return f"{self.hash}.{self.format}"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    def holds(self, data: bytes) -> bool:
        """Whether what the CDN sent is an image of this file's format, and small enough."""
        return len(data) <= MAX_ICON_BYTES and data.startswith(_MAGIC[self.format])


def icon_of(invite: Mapping[str, Any]) -> tuple[str, str] | None:
    """The guild id and icon hash an invite shows, if it shows one."""
    guild = invite.get("guild")
    if not isinstance(guild, Mapping):
        return None
    guild_id, icon = guild.get("id"), guild.get("icon")
    if not isinstance(guild_id, str) or not isinstance(icon, str) or not _HASH.match(icon):
        return None
    return guild_id, icon


def shown_by(invite: Mapping[str, Any], file: IconFile) -> str:
    """The guild whose icon ``file`` is, if the invite shows it now; else UnknownIcon."""
    shown = icon_of(invite)
    if shown is None or shown[1] != file.hash:
        raise UnknownIcon(detail=f"the invite shows {shown[1] if shown else 'no icon'}")
    return shown[0]


def still_of(invite: Mapping[str, Any]) -> IconFile | None:
    """The file a card embeds for the invite's guild: its icon as a still PNG."""
    shown = icon_of(invite)
    return IconFile(shown[1], "png") if shown else None
