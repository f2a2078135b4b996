"""In-memory stand-ins for the adapters, and a clock that moves only when told.

Each fake keeps the contract of the adapter it replaces (the same conditional
semantics as the DynamoDB adapters, the same errors as the Discord client), so
the services run unchanged at the speed of pure Python. Every fake can charge
its worst-case time to the clock, so deadline tests see what a slow table or a
slow Discord would cost.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from invite_proxy.adapters.discord.routes import Route
from invite_proxy.adapters.fleet_state.memory import InstanceFleetState
from invite_proxy.domain.cache_policy import CacheEntry, EntryKind
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import (
    DiscordRateLimited,
    DiscordTimeout,
    InviteProxyError,
    TableSkipped,
    TableUnavailable,
    UnknownInvite,
)
from invite_proxy.domain.fleet_state import Allowance, Block, BucketTake
from invite_proxy.domain.guard import Admission, Admitted
from invite_proxy.domain.guild_mirror import GuildRecord, MirroredInvite, MirrorState
from invite_proxy.domain.leases import AlreadyKnown, Claim, HeldElsewhere, Lease, Withheld
from invite_proxy.domain.payloads import DiscordResponse
from invite_proxy.domain.rate_limits import BucketState, RateLimit

START = 1_800_000_000.0


def rate_limited(
    retry_after: float, scope: str = "user", *, is_global: bool = False
) -> DiscordRateLimited:
    """Discord's 429, as the client raises it."""
    limit = RateLimit(retry_after=retry_after, discord_scope=scope, is_global=is_global)
    return DiscordRateLimited(retry_after=retry_after, rate_limit=limit)


class FakeClock:
    """Time stands still until something sleeps or charges for its work."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.slept: list[float] = []
        # Run while something sleeps: what other instances do in the meantime.
        self.meanwhile: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0, seconds
        self.slept.append(seconds)
        self.now += seconds
        while self.meanwhile:
            self.meanwhile.pop(0)()

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Table:
    """What the three DynamoDB adapters share: the clock, a per-call cost, and failure."""

    def __init__(self, clock: FakeClock, call_seconds: float = 0.0) -> None:
        self.clock = clock
        self.call_seconds = call_seconds  # what one DynamoDB call costs at worst
        self.calls = 0
        self.down = False

    def charge(
        self, calls: int = 1, deadline: Deadline = NO_DEADLINE, *, essential: bool = False
    ) -> None:
        """Account for ``calls`` DynamoDB calls, as the real adapter (TableCalls) makes them
        within the deadline: a call that might not finish is skipped, an essential one is
        waited for until the deadline."""
        for _ in range(calls):
            left = deadline.left()
            if left <= 0 or (left < self.call_seconds and not essential):
                raise TableSkipped(detail="fake table: no time left")
            self.calls += 1
            if left < self.call_seconds:
                self.clock.advance(left)
                raise TableSkipped(detail="fake table: did not finish before the deadline")
            self.clock.advance(self.call_seconds)
            if self.down:
                raise TableUnavailable(detail="fake table is down")


@dataclass
class _Revoked:
    at: float


class InMemoryCache:
    """The DynamoDB invite cache's contract: expiry on read, revocation marks, eviction."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.entries: dict[tuple[str, str], CacheEntry] = {}
        self.unknown: dict[str, CacheEntry] = {}  # codes Discord said do not exist
        self.revoked: dict[str, _Revoked] = {}
        self.foreign_events: dict[tuple[str, str], float] = {}  # an event not the guild's
        self.leases: InMemoryLeases | None = None  # eviction clears these too
        self.mirror: InMemoryGuildMirror | None = None  # and the code's mirrored copy

    def get(
        self,
        code: str,
        variant: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> CacheEntry | None:
        self.table.charge(1, deadline)
        entry = self.entries.get((code, variant))  # the unknown marker: the claim's
        return None if entry is None or entry.is_expired(now) else entry

    def put(
        self,
        entry: CacheEntry,
        *,
        fetch_started: float | None = None,
        lease: Lease | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> bool:
        self.table.charge(1, deadline)
        mark = self.revoked.get(entry.code)
        if fetch_started is not None and mark is not None and mark.at >= fetch_started:
            return False
        self.entries[(entry.code, entry.variant)] = entry
        if entry.kind is EntryKind.UNKNOWN:
            self.unknown[entry.code] = entry
        if lease is not None and self.leases is not None:  # settled in the same call
            self.leases.settle(lease, entry.fresh_until)
        return True

    def remember(self, entry: CacheEntry, asked_at: float) -> None:
        """The table has it already."""

    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> bool:
        self.table.charge(1, deadline)
        return self.foreign_events.get((code, event_id), 0.0) > now

    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self.table.charge(1, deadline)
        self.foreign_events[(code, event_id)] = until

    def variants_of(self, code: str) -> list[str]:
        return [variant for (c, variant) in self.entries if c == code]

    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = NO_DEADLINE) -> list[str]:
        leases = self.leases.held_for(code) if self.leases else []
        variants = self.variants_of(code)
        # The adapter: the mark, the query, a delete for each variant and each lease.
        marker = 1 if code in self.unknown else 0
        self.table.charge(2 + len(variants) + len(leases) + marker, deadline, essential=True)
        self.revoked[code] = _Revoked(revoked_at)
        self.unknown.pop(code, None)
        bodies = []
        for variant in variants:
            entry = self.entries.pop((code, variant))
            if entry.kind is EntryKind.INVITE:
                bodies.append(entry.body)
        if self.leases:
            self.leases.drop(code)
        listed = self.mirror.listed.pop(code, None) if self.mirror else None
        if self.mirror and listed is not None:
            # The adapter: the mirrored copy's delete, and its digest's.
            self.table.charge(2, deadline, essential=True)
            self.mirror.digests.get(listed.guild_id, {}).pop(code, None)
        return bodies

    def shorten_ttl(self, code: str, ttl: int, *, deadline: Deadline = NO_DEADLINE) -> int:
        variants = self.variants_of(code)
        self.table.charge(1 + len(variants), deadline)
        shortened = 0
        for variant in variants:
            entry = self.entries[(code, variant)]
            if entry.expires_at > ttl:
                self.entries[(code, variant)] = _with_ttl(entry, ttl)
                shortened += 1
        return shortened


def _with_ttl(entry: CacheEntry, ttl: int) -> CacheEntry:
    return CacheEntry(
        code=entry.code,
        variant=entry.variant,
        kind=entry.kind,
        body=entry.body,
        etag=entry.etag,
        fetched_at=entry.fetched_at,
        fresh_until=min(entry.fresh_until, ttl),
        expires_at=ttl,
    )


@dataclass
class LeaseRecord:
    owner: str
    until: float
    failed: str | None = None


class InMemoryLeases:
    """Fetch leases: taken when free or run out, settled only by their owner."""

    _owners = itertools.count(1)

    def __init__(
        self,
        table: Table,
        shared: dict[tuple[str, str], LeaseRecord] | None = None,
        *,
        cache: InMemoryCache | None = None,
        fleet: InstanceFleetState | None = None,
    ):
        self.table = table
        # Instances of one fleet share the records, each with its own owner id.
        self.records = shared if shared is not None else {}
        self.owner = f"instance-{next(self._owners)}"
        self.cache = cache  # its unknown markers, read by a claim
        self.fleet = fleet  # the fleet's state, an admission's part of a claim

    def claim(
        self,
        code: str,
        variant: str,
        now: float,
        seconds: float,
        *,
        admission: Admission | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> Claim:
        """As the adapter's one transaction: the unknown marker, the lease, then the
        admission, all or none; a block or a spent second leaves the admission to the
        guard, with the adapter's second call."""
        self.table.charge(1, deadline)
        marker = self.cache.unknown.get(code) if self.cache else None
        if marker is not None and marker.is_fresh(now):
            return AlreadyKnown(dataclasses.replace(marker, variant=variant))
        held = self.records.get((code, variant))
        if held is not None and held.until >= now:
            return HeldElsewhere(until=held.until, failed=held.failed)
        admitted = None
        if admission is not None and self.fleet is not None:
            taken = self._admit(admission, now)
            if isinstance(taken, Withheld):
                return taken
            if taken is None:
                self.table.charge(1, deadline)
            admitted = taken
        self.records[(code, variant)] = LeaseRecord(self.owner, now + seconds)
        return Lease(code, variant, self.owner, now + seconds, admitted)

    def _admit(self, admission: Admission, now: float) -> Admitted | Withheld | None:
        fleet = self.fleet
        assert fleet is not None
        with fleet.lock:
            for name, allowance in admission.allowances:
                _, wait = allowance.take(fleet.allowances.get(name), now)
                if wait > 0:
                    return Withheld(name, wait)
            blocked = any(b.target in admission.blocks for b in fleet.active_blocks(now))
            rate = fleet.counters.get(("rate", math.floor(now)), 0)
            if blocked or rate >= admission.calls_per_second:
                return None
            for name, allowance in admission.allowances:
                fleet.take_allowance(name, now, allowance)
            fleet.take_second(now, admission.calls_per_second)
        return Admitted(admission, math.floor(now))

    def settle(self, lease: Lease, until: float) -> None:
        held = self.records.get((lease.code, lease.variant))
        if held is not None and held.owner == lease.owner:
            held.until, held.failed = until, None

    def acquire(
        self,
        code: str,
        variant: str,
        now: float,
        seconds: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> Lease | HeldElsewhere:
        self.table.charge(1, deadline)
        held = self.records.get((code, variant))
        if held is not None and held.until >= now:
            return HeldElsewhere(until=held.until, failed=held.failed)
        self.records[(code, variant)] = LeaseRecord(self.owner, now + seconds)
        return Lease(code, variant, self.owner, now + seconds)

    def finish(
        self,
        lease: Lease,
        until: float,
        *,
        failed: str | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self.table.charge(1, deadline)
        held = self.records.get((lease.code, lease.variant))
        if held is not None and held.owner == lease.owner:
            held.until, held.failed = until, failed

    def held_for(self, code: str) -> list[str]:
        return [variant for (c, variant) in self.records if c == code]

    def drop(self, code: str) -> None:
        for key in [k for k in self.records if k[0] == code]:
            del self.records[key]


class InMemoryFleetState:
    """The fleet's shared state: the library's own in-memory twin, charged as table calls."""

    def __init__(self, table: Table, memory: InstanceFleetState | None = None) -> None:
        self.table = table
        self.memory = memory or InstanceFleetState()

    def view(self) -> InMemoryFleetState:
        """The same shared state, as another instance (with its own probe id) sees it."""
        return InMemoryFleetState(self.table, InstanceFleetState(shared=self.memory))

    @property
    def buckets(self) -> dict[str, Any]:
        return self.memory.buckets

    @property
    def counters(self) -> dict[tuple[str, int], int]:
        return self.memory.counters

    def active_blocks(self, now: float, *, deadline: Deadline = NO_DEADLINE) -> list[Block]:
        self.table.charge(1, deadline)
        return self.memory.active_blocks(now)

    def block(
        self, target: str, until: float, reason: str, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self.table.charge(1, deadline)
        self.memory.block(target, until, reason)

    def count_invalid(self, now: float, *, deadline: Deadline = NO_DEADLINE) -> int:
        self.table.charge(1, deadline)
        return self.memory.count_invalid(now)

    def take_second(self, now: float, limit: int, *, deadline: Deadline = NO_DEADLINE) -> bool:
        self.table.charge(1, deadline)
        return self.memory.take_second(now, limit)

    def take_bucket(
        self,
        bucket: str,
        now: float,
        probe_seconds: float,
        ticket: int | None = None,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> BucketTake:
        self.table.charge(2, deadline)  # a take, then a probe: the adapter's worst case
        return self.memory.take_bucket(bucket, now, probe_seconds, ticket)

    def record_bucket(
        self, bucket: str, state: BucketState, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self.table.charge(1, deadline)
        self.memory.record_bucket(bucket, state)

    def end_probe(self, bucket: str, now: float, *, deadline: Deadline = NO_DEADLINE) -> None:
        self.table.charge(1, deadline)
        self.memory.end_probe(bucket, now)

    def take_allowance(
        self, name: str, now: float, allowance: Allowance, *, deadline: Deadline = NO_DEADLINE
    ) -> float:
        self.table.charge(2, deadline)  # the adapter's worst case but a race: two writes
        return self.memory.take_allowance(name, now, allowance)

    def give_back_allowance(
        self, name: str, allowance: Allowance, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self.table.charge(1, deadline)
        self.memory.give_back_allowance(name, allowance)


@dataclass
class FakeDiscord:
    """The raw Discord client's contract: a 2xx answer, or the error the client would raise.

    Invites live in ``invites``; ``faults`` are raised in order before anything else.
    """

    clock: FakeClock
    latency: float = 0.0  # each call's time, as a slow Discord would take it
    token_seconds: float = 0.0  # each call's token read, as if its cache had just run out
    invites: dict[str, dict[str, Any]] = field(default_factory=dict)
    guilds: dict[str, list[str]] = field(default_factory=dict)  # guild id -> its invite codes
    vanity: dict[str, str] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # guild id -> its counts
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[InviteProxyError] = field(default_factory=list)
    # Raised for every call to a route ("DELETE /invites/x"), or to every route of a method.
    refuse: dict[str, InviteProxyError] = field(default_factory=dict)
    rate_limit: RateLimit | None = None  # the headers each answer carries
    calls: list[Route] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    token_unreadable: InviteProxyError | None = None  # what reading the token raises
    # Run once, after the next answer is decided and before it arrives: what happens meanwhile.
    while_answering: list[Callable[[Route], None]] = field(default_factory=list)

    def add_invite(self, code: str, guild_id: str = "1000", **fields: Any) -> dict[str, Any]:
        invite = {"code": code, "guild_id": guild_id, "guild": {"id": guild_id}, **fields}
        self.invites[code] = invite
        self.guilds.setdefault(guild_id, []).append(code)
        return invite

    def credentials(self, deadline: Deadline) -> None:
        if self.token_unreadable is not None:
            raise self.token_unreadable

    def request(
        self,
        route: Route,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: Deadline,
    ) -> DiscordResponse:
        # As the client: it waits no longer than the deadline, whatever the call would take.
        left = deadline.left()
        if left <= 0:
            raise DiscordTimeout(detail="fake: no time left before the deadline")
        self.calls.append(route)
        if self.token_seconds + self.latency > left:
            self.clock.advance(left)
            raise DiscordTimeout(detail="fake: no answer before the deadline")
        self.clock.advance(self.token_seconds + self.latency)
        if self.faults:
            raise self.faults.pop(0)
        refusal = self.refuse.get(f"{route.method} {route.path}") or self.refuse.get(route.method)
        if refusal is not None:
            raise refusal
        answer = self._decide(route)
        while self.while_answering:
            self.while_answering.pop(0)(route)
        return answer

    def _decide(self, route: Route) -> DiscordResponse:
        method, parts = route.method, route.path.strip("/").split("/")
        if parts[0] == "invites":
            invite = self.invites.get(parts[1])
            if invite is None:
                raise UnknownInvite(detail="fake: unknown invite", rate_limit=self.rate_limit)
            if method == "DELETE":
                self.deleted.append(parts[1])
                del self.invites[parts[1]]
            return self._answer(invite)
        if len(parts) == 2:  # GET /guilds/{id}?with_counts=true
            guild = {"id": parts[1], "vanity_url_code": self.vanity.get(parts[1])}
            return self._answer(guild | self.counts.get(parts[1], {}))
        if parts[2] == "invites":
            return self._answer([self.invites[c] for c in self.guilds.get(parts[1], [])])
        if parts[2] == "scheduled-events":
            return self._answer(self.events.get(parts[1], []))
        return self._answer({"code": self.vanity.get(parts[1])})

    def _answer(self, payload: Any) -> DiscordResponse:
        return DiscordResponse(
            status=200,
            body=json.dumps(payload),
            payload=payload,
            rate_limit=self.rate_limit or RateLimit(),
        )


class InMemoryGuildMirror:
    """Guild mode's mirror: the adapter's contract, its calls charged to the table."""

    def __init__(self, table: Table, cache: InMemoryCache) -> None:
        self.table = table
        self.cache = cache  # its revocation marks, which a refresh honours
        cache.mirror = self
        self.listed: dict[str, MirroredInvite] = {}
        self.digests: dict[str, dict[str, str]] = {}
        self.records: dict[str, GuildRecord] = {}
        self.event_lists: dict[str, list[dict[str, Any]]] = {}
        self.refreshes: list[str] = []

    def get(
        self,
        code: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> MirroredInvite | None:
        self.table.charge(1, deadline)
        invite = self.listed.get(code)
        if invite is None or (invite.expires_at is not None and invite.expires_at <= now):
            return None
        return invite

    def state(self, *, deadline: Deadline = NO_DEADLINE) -> MirrorState:
        self.table.charge(1, deadline)
        return MirrorState(dict(self.records))

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
        listed_at = now if listed_at is None else listed_at
        seen = self.digests.get(guild_id, {})
        current = {i.code: i for i in invites}
        changed = [i for i in invites if seen.get(i.code) != i.digest]
        gone = [code for code in seen if code not in current]
        self.table.charge(2 + (len(changed) + len(gone) + 24) // 25, deadline)
        for invite in changed:
            self.listed[invite.code] = invite
        for code in gone:
            self.listed.pop(code, None)
        revoked = [
            i.code for i in changed if (m := self.cache.revoked.get(i.code)) and m.at >= listed_at
        ]
        for code in revoked:
            self.listed.pop(code, None)
        self.digests[guild_id] = {c: i.digest for c, i in current.items() if c not in revoked}
        self._set(guild_id, refreshed_at=listed_at, lasting=lasting)
        self.refreshes.append(guild_id)

    def record_guild(
        self,
        guild_id: str,
        counts: dict[str, int],
        vanity: str | None,
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self._set(guild_id, counts=counts, counts_at=now, vanity=vanity, deadline=deadline)

    def mark_unreadable(
        self, guild_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self._set(guild_id, unreadable_until=until, deadline=deadline)

    def mark_vanity_read(
        self, guild_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self._set(guild_id, vanity_at=now, deadline=deadline)

    def events(
        self, guild_id: str, *, deadline: Deadline = NO_DEADLINE
    ) -> list[dict[str, Any]] | None:
        self.table.charge(1, deadline)
        return self.event_lists.get(guild_id)

    def record_events(
        self,
        guild_id: str,
        events: list[dict[str, Any]],
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        self.table.charge(1, deadline)
        self.event_lists[guild_id] = events
        self._set(guild_id, events_at=now, deadline=deadline)

    def _set(self, guild_id: str, deadline: Deadline = NO_DEADLINE, **fields: Any) -> None:
        self.table.charge(1, deadline)
        record = self.records.get(guild_id) or GuildRecord()
        self.records[guild_id] = dataclasses.replace(record, **fields)
