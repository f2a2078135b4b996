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
from dataclasses import dataclass, field
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


@dataclass(frozen=True, slots=True)
class GuildRecord:
    """What the fleet knows of one allowed guild, beside its mirrored invites."""

    refreshed_at: float | None = None  # when its listing was last read into the mirror
    unreadable_until: float | None = None  # its listing was refused (403): per code till then
    vanity: str | None = None  # never in the listing: resolved per code
    counts: dict[str, int] | None = None  # the guild's approximate counts
    counts_at: float | None = None  # when they were read
    events_at: float | None = None  # when its scheduled events were read
    vanity_at: float | None = None  # when its vanity invite was last looked up
    lasting: str | None = None  # its most used invite that never expires, as last listed

    def unreadable(self, now: float) -> bool:
        return self.unreadable_until is not None and now < self.unreadable_until


@dataclass(frozen=True, slots=True)
class MirrorState:
    """Every allowed guild's record: one small item, read by a lookup of a code no
    listing has, so a flood of random codes costs one read each and no Discord call."""

    guilds: dict[str, GuildRecord]

    def record(self, guild_id: str) -> GuildRecord:
        return self.guilds.get(guild_id) or GuildRecord()

    def vanity_guild(self, code: str) -> str | None:
        """The guild whose vanity code this is (Discord matches vanity codes in any case)."""
        folded = code.casefold()
        for guild_id, record in self.guilds.items():
            if record.vanity is not None and record.vanity.casefold() == folded:
                return guild_id
        return None


@dataclass(frozen=True, slots=True)
class GuildModePolicy:
    """How fresh guild mode keeps its lists: docs/protections.md, "Guild mode"."""

    guilds: frozenset[str]
    # A code no listing has makes the fleet read the lists again, at most this often.
    min_refresh_seconds: float
    # A listed invite's answer, the counts and the events are read again after this.
    fresh_seconds: float
    # The longest a lookup waits on another instance's refresh before answering.
    wait_seconds: float
    # A guild whose listing was refused is tried again after this long.
    unreadable_retry_seconds: float = 600.0
    # The code the operator chose for a guild's card (GUILD_INVITE_CODES), by guild id.
    chosen: dict[str, str] = field(default_factory=dict)
    # A guild's card's code, once read, is kept in the instance's memory this long
    # (MEMORY_CACHE_SECONDS): a busy page's guild card costs no table call per view.
    memory_seconds: float = 0.0

    def list_due(self, record: GuildRecord, now: float, *, within: float) -> bool:
        """Whether the guild's list is more than ``within`` old (its lease, settled at the
        read plus the interval, is free then too)."""
        return record.refreshed_at is None or now - record.refreshed_at > within

    def next_refresh(self, state: MirrorState, now: float) -> float:
        """When a code not listed now could be listed at the earliest: its 404 is not
        remembered past this."""
        times = [state.record(g).refreshed_at for g in self.guilds]
        known = [t + self.min_refresh_seconds for t in times if t is not None]
        return max(now, min(known)) if len(known) == len(times) and known else now


def lasting_code(listing: list[Any]) -> str | None:
    """The invite a guild's card shows when no vanity code or chosen code says otherwise:
    the most used that never expires (max_age 0) and is not temporary; the oldest wins a
    tie, so the choice holds still while nothing changes."""
    lasting = [
        item
        for item in listing
        if isinstance(item, dict)
        and isinstance(item.get("code"), str)
        and item.get("max_age") == 0
        and not item.get("temporary")
        and not item.get("max_uses")
    ]
    if not lasting:
        return None
    best = min(
        lasting, key=lambda i: (-int(i.get("uses") or 0), str(i.get("created_at")), i["code"])
    )
    return str(best["code"])


def guild_work(guild_id: str) -> str:
    """What a lease on a guild's shared work (its list, counts, events) is named: a code
    no invite code can be, as invite codes have no ':'."""
    return f"guild:{guild_id}"


def counts_of(guild: dict[str, Any]) -> dict[str, int]:
    """The approximate counts of ``GET /guilds/{id}?with_counts=true``."""
    return {name: guild[name] for name in COUNTS if isinstance(guild.get(name), int)}


def vanity_of(guild: dict[str, Any]) -> str | None:
    vanity = guild.get("vanity_url_code")
    return vanity if isinstance(vanity, str) and vanity else None


def event_in(events: list[dict[str, Any]], event_id: str | None) -> dict[str, Any] | None:
    """The scheduled event named, if it is among the guild's; else none (as Discord does)."""
    wanted = (event_id or "").lstrip("0")  # a snowflake is a number: 0123 is 123
    return next((e for e in events if wanted and str(e.get("id")) == wanted), None)
