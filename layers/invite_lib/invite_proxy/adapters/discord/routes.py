"""Discord's routes, and the rate-limit bucket each belongs to: derived here and only here.

Every ``GET /invites/{code}`` shares one bucket, ``DELETE /invites/{code}`` has
its own, and guild routes are limited per guild (the guild id is a major
parameter), so each guild has buckets of its own. These are our names for the
buckets; the guard keeps each apart, fleet-wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # with each parameter already one encoded path segment
    bucket: str

    @classmethod
    def get_invite(cls, code: str) -> Route:
        return cls("GET", f"/invites/{_segment(code)}", "bucket:invites")

    @classmethod
    def delete_invite(cls, code: str) -> Route:
        return cls("DELETE", f"/invites/{_segment(code)}", "bucket:invites-delete")

    @classmethod
    def guild_invites(cls, guild_id: str) -> Route:
        return cls("GET", f"/guilds/{_segment(guild_id)}/invites", _guild("invites", guild_id))

    @classmethod
    def guild_vanity_url(cls, guild_id: str) -> Route:
        return cls("GET", f"/guilds/{_segment(guild_id)}/vanity-url", _guild("vanity", guild_id))

    @classmethod
    def guild(cls, guild_id: str) -> Route:
        return cls("GET", f"/guilds/{_segment(guild_id)}", _guild("guild", guild_id))

    @classmethod
    def guild_events(cls, guild_id: str) -> Route:
        path = f"/guilds/{_segment(guild_id)}/scheduled-events"
        return cls("GET", path, _guild("events", guild_id))


def _guild(route: str, guild_id: str) -> str:
    return f"bucket:guild-{route}:{guild_id}"


def _segment(value: str) -> str:
    """One path segment, whatever the value holds (callers validate first; this is a backstop)."""
    return quote(value, safe="")
