"""Discord's answers: one 2xx response as the client hands it on, and a field or two read
from Discord's JSON objects without parsing them into models.

On every request's path (a cached body names its guild), so plain dictionary
lookups: an object that is not the shape expected has no such field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invite_proxy.domain.rate_limits import RateLimit


@dataclass(frozen=True, slots=True)
class DiscordResponse:
    status: int
    body: str  # exactly as Discord sent it
    payload: Any  # the same body, parsed
    rate_limit: RateLimit


def guild_of(payload: Any) -> str | None:
    """The guild an invite object belongs to, if it says."""
    if not isinstance(payload, dict):
        return None
    guild = payload.get("guild")
    guild_id = payload.get("guild_id") or (guild.get("id") if isinstance(guild, dict) else None)
    return str(guild_id) if guild_id else None


def vanity_code_of(payload: Any) -> str | None:
    """The vanity code of the guild an invite object belongs to, if it says."""
    guild = payload.get("guild") if isinstance(payload, dict) else None
    code = guild.get("vanity_url_code") if isinstance(guild, dict) else None
    return code if isinstance(code, str) and code else None


def vanity_code_of_url(payload: Any) -> str | None:
    """The code in an answer of GET /guilds/{id}/vanity-url; None when the guild has none."""
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, str) and code else None
