"""Guild mode's rules: an invite as a guild's listing shows it, answered as a lookup would be.

``GET /guilds/{id}/invites`` returns every invite of the guild in one call, each the
object ``GET /invites/{code}`` would give plus the metadata only the listing carries
(``uses``, ``max_uses``, ``max_age``, ``temporary``, ``created_at``). A mirrored invite
is published without that metadata, and with whatever else Discord sent (fields
Discord adds are kept); its life is its own (``created_at + max_age``, or Discord's
``expires_at``); counts and a scheduled event are merged in when a lookup asks.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# What only the listing shows: never published by a lookup.
LISTING_ONLY = frozenset({"uses", "max_uses", "max_age", "temporary", "created_at"})
COUNTS = ("approximate_member_count", "approximate_presence_count")


@dataclass(frozen=True, slots=True)
class MirroredInvite:
    code: str
    guild_id: str
    body: str  # the public object, as JSON: what a lookup answers (before counts, events)
    expires_at: int | None  # epoch seconds; None: it never expires

    @property
    def digest(self) -> str:
        """What a refresh compares: an invite unchanged since the last listing is not written."""
        return hashlib.sha256(f"{self.body}|{self.expires_at}".encode()).hexdigest()[:16]


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def expiry_of(listed: dict[str, Any]) -> int | None:
    """When a listed invite stops working: Discord's ``expires_at``, else its own
    ``created_at + max_age`` (0: never)."""
    expires = _epoch(listed.get("expires_at"))
    if expires is None:
        created, max_age = _epoch(listed.get("created_at")), listed.get("max_age")
        if created is not None and isinstance(max_age, int) and max_age > 0:
            expires = created + max_age
    return math.ceil(expires) if expires is not None else None


def mirrored(listed: dict[str, Any], guild_id: str) -> MirroredInvite | None:
    """One invite of a guild's listing, ready to mirror; None for what is no invite."""
    code = listed.get("code")
    if not isinstance(code, str) or not code:
        return None
    public = {k: v for k, v in listed.items() if k not in LISTING_ONLY}
    return MirroredInvite(
        code=code,
        guild_id=guild_id,
        body=json.dumps(public, separators=(",", ":"), ensure_ascii=False),
        expires_at=expiry_of(listed),
    )


def lookup_body(
    invite: MirroredInvite,
    *,
    guild: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
) -> str:
    """The answer to ``GET /invites/{code}`` from the mirror: with the guild's approximate
    counts when asked (``guild``, as ``GET /guilds/{id}?with_counts=true`` gave it), and the
    scheduled event asked for when it is the invite's guild's (``event``)."""
    if guild is None and event is None:
        return invite.body
    body: dict[str, Any] = json.loads(invite.body)
    for name in COUNTS:
        if guild is not None and name in guild:
            body[name] = guild[name]
    if event is not None and event.get("guild_id") == invite.guild_id:
        body["guild_scheduled_event"] = event
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
