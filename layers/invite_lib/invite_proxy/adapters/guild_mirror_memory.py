"""Adapter: guild mode's mirror, and the leases on its reads, in this instance's memory.

While the table does not answer, an instance reads the allowed guilds' lists
itself, at most once per interval, and answers from what it read, as the guard
keeps to its own share while the fleet's state is out of reach. So a table
outage never turns guild mode into a lookup per code: the fleet's calls are then
bounded by instances times guilds, still not by what is asked. What a revocation
elsewhere did is not known here; an instance's own read is at most an interval old.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.guild_mirror import GuildRecord, MirroredInvite, MirrorState
from invite_proxy.domain.leases import HeldElsewhere, Lease


class InstanceGuildMirror:
    def __init__(self) -> None:
        self._listed: dict[str, MirroredInvite] = {}
        self._codes: dict[str, set[str]] = {}  # guild id -> its codes
        self._records: dict[str, GuildRecord] = {}
        self._events: dict[str, list[dict[str, Any]]] = {}

    def get(
        self,
        code: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> MirroredInvite | None:
        invite = self._listed.get(code)
        if invite is None or (invite.expires_at is not None and invite.expires_at <= now):
            return None
        return invite

    def state(self, *, deadline: Deadline = NO_DEADLINE) -> MirrorState:
        return MirrorState(dict(self._records))

    def refresh(
        self,
        guild_id: str,
        invites: list[MirroredInvite],
        now: float,
        *,
        listed_at: float | None = None,
        lasting: str | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        for code in self._codes.get(guild_id, set()) - {i.code for i in invites}:
            self._listed.pop(code, None)
        self._listed.update({invite.code: invite for invite in invites})
        self._codes[guild_id] = {invite.code for invite in invites}
        self._set(guild_id, refreshed_at=now if listed_at is None else listed_at, lasting=lasting)

    def record_guild(
        self,
        guild_id: str,
        counts: dict[str, int],
        vanity: str | None,
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self._set(guild_id, counts=counts, counts_at=now, vanity=vanity)

    def mark_unreadable(
        self, guild_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self._set(guild_id, unreadable_until=until)

    def mark_vanity_read(
        self, guild_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self._set(guild_id, vanity_at=now)

    def events(
        self, guild_id: str, *, deadline: Deadline = NO_DEADLINE
    ) -> list[dict[str, Any]] | None:
        return self._events.get(guild_id)

    def record_events(
        self,
        guild_id: str,
        events: list[dict[str, Any]],
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self._events[guild_id] = events
        self._set(guild_id, events_at=now)

    def _set(self, guild_id: str, **fields: Any) -> None:
        record = self._records.get(guild_id) or GuildRecord()
        self._records[guild_id] = dataclasses.replace(record, **fields)


class InstanceLeases:
    """Leases on this instance's own reads: it serves one request at a time, so a lease
    only keeps the reads to their pace (a read per interval), and says when one failed."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], tuple[float, str | None]] = {}

    def acquire(
        self,
        code: str,
        variant: str,
        now: float,
        seconds: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> Lease | HeldElsewhere:
        until, failed = self._held.get((code, variant), (None, None))
        if until is not None and until >= now:
            return HeldElsewhere(until=until, failed=failed)
        self._held[(code, variant)] = (now + seconds, None)
        return Lease(code, variant, "instance", now + seconds)

    def finish(
        self,
        lease: Lease,
        until: float,
        *,
        failed: str | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self._held[(lease.code, lease.variant)] = (until, failed)
