"""Guild mode: lookups answered from each allowed guild's own invite list.

The bot lists a guild's invites in one call (``GET /guilds/{id}/invites``); the
mirror keeps that list in the table, so a listed code is answered without asking
Discord, and a code no list has costs one read, however many are tried. When the
lists are older than ``min_refresh_seconds``, one instance in the fleet reads them
again (a lease per guild) and the others wait for it at most ``wait_seconds``.
Counts and scheduled events come from one call per guild per freshness window.

``answer`` returns None for what is looked up per code instead, as in open mode:
the guild's vanity code (never in a listing), a code while a guild's list cannot be
read (the bot lacks Manage Server), and any code while the table is down.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from invite_proxy import observability as obs
from invite_proxy.domain.cache_policy import CacheEntry, CachePolicy, invite_entry, unlisted_entry
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import (
    DiscordError,
    DiscordMissingPermissions,
    InviteProxyError,
    LookupInProgress,
    LookupRecentlyFailed,
    TableUnavailable,
    UnknownInvite,
)
from invite_proxy.domain.guild_mirror import (
    GuildModePolicy,
    GuildRecord,
    MirroredInvite,
    MirrorState,
    counts_of,
    event_in,
    guild_work,
    lasting_code,
    lookup_body,
    mirrored,
    vanity_of,
)
from invite_proxy.domain.leases import HeldElsewhere, Lease

if TYPE_CHECKING:
    from invite_proxy.domain.guard import Caller
    from invite_proxy.domain.inputs import InviteQuery
    from invite_proxy.domain.payloads import DiscordResponse

POLL_SECONDS = 0.2  # how often a lookup waiting on another's refresh looks again


class WorkLeases(Protocol):
    """Leases on a guild's work (reading its list, counts or events), as on a code's fetch
    (adapters/dynamodb/lease_store.py): one instance in the fleet does it."""

    def acquire(
        self, code: str, variant: str, now: float, seconds: float, *, deadline: Deadline = ...
    ) -> Lease | HeldElsewhere: ...
    def finish(
        self, lease: Lease, until: float, *, failed: str | None = None, deadline: Deadline = ...
    ) -> None: ...


class MirrorStore(Protocol):
    def get(
        self, code: str, now: float, *, consistent: bool = False, deadline: Deadline = ...
    ) -> MirroredInvite | None: ...
    def state(self, *, deadline: Deadline = ...) -> MirrorState: ...
    def refresh(
        self,
        guild_id: str,
        invites: list[MirroredInvite],
        now: float,
        *,
        listed_at: float | None = None,
        lasting: str | None = None,
        deadline: Deadline = ...,
    ) -> object: ...
    def record_guild(
        self,
        guild_id: str,
        counts: dict[str, int],
        vanity: str | None,
        now: float,
        *,
        deadline: Deadline = ...,
    ) -> None: ...
    def mark_unreadable(self, guild_id: str, until: float, *, deadline: Deadline = ...) -> None: ...
    def mark_vanity_read(self, guild_id: str, now: float, *, deadline: Deadline = ...) -> None: ...
    def events(self, guild_id: str, *, deadline: Deadline = ...) -> list[dict[str, Any]] | None: ...
    def record_events(
        self, guild_id: str, events: list[dict[str, Any]], now: float, *, deadline: Deadline = ...
    ) -> None: ...


class GuildSource(Protocol):
    """Discord's guild routes, through the guard (they spend no lookup budget), and the
    vanity invite's lookup (which does)."""

    def lookup_invite(
        self,
        code: str,
        params: Mapping[str, str],
        *,
        deadline: Deadline,
        call_deadline: Deadline,
        caller: Caller = None,
    ) -> DiscordResponse: ...

    def list_guild_invites(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse: ...
    def guild_with_counts(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse: ...
    def guild_events(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse: ...


def mirror_listing(
    store: MirrorStore,
    guild_id: str,
    payload: Any,
    listed_at: float,
    now: float,
    deadline: Deadline,
    *,
    vanity: MirroredInvite | None = None,
) -> int:
    """Write a guild's listing (``GET /guilds/{id}/invites``, read from ``listed_at``) into
    the mirror; how many invites it holds. A rule run's listing serves this too.

    The vanity invite is never in a listing: it is mirrored from its own lookup
    (``vanity``), or the copy already mirrored is kept."""
    if not isinstance(payload, list):
        raise DiscordError(detail="the guild invite listing is not a list")
    invites = [m for item in payload if isinstance(item, dict) and (m := mirrored(item, guild_id))]
    if vanity is None:
        code = store.state(deadline=deadline).record(guild_id).vanity
        vanity = store.get(code, now, consistent=True, deadline=deadline) if code else None
    if vanity is not None and all(invite.code != vanity.code for invite in invites):
        invites.append(vanity)
    lasting = lasting_code(payload)
    store.refresh(guild_id, invites, now, listed_at=listed_at, lasting=lasting, deadline=deadline)
    obs.count("GuildListRefresh")
    # A count per refresh; the dashboard shows its maximum as the mirror's size.
    obs.count("MirroredInvites", len(invites))
    return len(invites)


class GuildMode:
    def __init__(
        self,
        *,
        store: MirrorStore,
        discord: GuildSource,
        leases: WorkLeases,
        policy: GuildModePolicy,
        cache_policy: CachePolicy,
        lease_seconds: float,
        call_seconds: float,
        alone: GuildMode | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # ``alone``: the same, over this instance's own memory, while the table is down.
        self._alone = alone
        self._store = store
        self._discord = discord
        self._leases = leases
        self._policy = policy
        self._cache_policy = cache_policy
        self._lease_seconds = lease_seconds
        self._call_seconds = call_seconds  # a Discord call's share of the lookup's time
        self._clock = clock
        self._sleep = sleep
        # Each allowed guild's card code, and until when this instance may answer it.
        self._lasting: dict[str, tuple[float, str | None]] = {}

    def answer(self, query: InviteQuery, deadline: Deadline) -> CacheEntry | None:
        """The lookup's answer from the mirror (an invite, or unknown until the lists may
        be read again); None when the code is to be looked up per code instead.

        All of it, a read of the lists included, ends within the lookup's own deadline
        (``LOOKUP_DEADLINE_SECONDS``), which the refresh's lease outlasts."""
        deadline = deadline.within(self._call_seconds)
        return self._table_or_own(lambda mode: mode._answer(query, deadline))

    def _answer(self, query: InviteQuery, deadline: Deadline) -> CacheEntry | None:
        now = self._clock()
        listed = self._store.get(query.code, now, deadline=deadline)
        state = self._store.state(deadline=deadline)
        if listed is None:
            listed = self._vanity(query.code, state, deadline)
        if listed is None:
            listed, state = self._look_again(query.code, state, deadline)
            listed = listed or self._vanity(query.code, state, deadline)
        if listed is None:
            now = self._clock()
            if state.vanity_guild(query.code) is not None or self._any_unreadable(state, now):
                return None
            obs.count("MirrorUnlisted")
            return unlisted_entry(
                query.code, query.variant, now, self._policy.next_refresh(state, now)
            )
        return self._from_mirror(listed, state, query, deadline)

    def _vanity(self, code: str, state: MirrorState, deadline: Deadline) -> MirroredInvite | None:
        """A guild's vanity code asked in another case (Discord matches it in any): its
        mirrored copy, under the code as the guild spells it."""
        guild_id = state.vanity_guild(code)
        vanity = state.record(guild_id).vanity if guild_id else None
        if vanity is None or vanity == code:
            return None
        return self._store.get(vanity, self._clock(), deadline=deadline)

    def lasting_code(self, guild_id: str, deadline: Deadline) -> str | None:
        """The code a guild's card shows, so that it outlives any one invite: its vanity
        code, the operator's choice for it, or its most used invite that never expires
        (as its list, read within a window, says). None: none, or not a guild served."""
        if guild_id not in self._policy.guilds:
            return None
        kept = self._lasting.get(guild_id)
        if kept is not None and self._clock() < kept[0]:
            return kept[1]
        deadline = deadline.within(self._call_seconds)
        record = self._table_or_own(lambda mode: mode._fresh_record(guild_id, deadline))
        if record is None:
            return None
        code = record.vanity or self._policy.chosen.get(guild_id) or record.lasting
        if self._policy.memory_seconds > 0:  # one entry per allowed guild: bounded
            self._lasting[guild_id] = (self._clock() + self._policy.memory_seconds, code)
        return code

    def _table_or_own[T](self, work: Callable[[GuildMode], T]) -> T | None:
        """``work`` over the table's lists; while the table is down, over the instance's
        own (it reads them itself, once per interval: no call per code); None when it
        has none (then per code, under the budget and the shares)."""
        try:
            return work(self)
        except TableUnavailable:
            obs.count("CacheError")
            return work(self._alone) if self._alone is not None else None

    def _fresh_record(self, guild_id: str, deadline: Deadline) -> GuildRecord:
        record = self._store.state(deadline=deadline).record(guild_id)
        now = self._clock()
        # Read within a window; or, with no card's code known yet (a record from before
        # cards), within the interval.
        within = self._policy.fresh_seconds
        if record.lasting is None and record.vanity is None:
            within = self._policy.min_refresh_seconds
        if record.unreadable(now) or not self._policy.list_due(record, now, within=within):
            return record
        try:
            if self._refresh(guild_id, deadline) is None:
                return self._store.state(deadline=deadline).record(guild_id)
        except InviteProxyError as exc:
            if not exc.serve_stale or record.refreshed_at is None:
                raise
            obs.logger.warning("guild list not read", extra={"error": exc.code})
        return record  # as it was: another instance reads it now, or Discord failed

    # -- a code no list has ------------------------------------------------------------
    def _look_again(
        self, code: str, state: MirrorState, deadline: Deadline
    ) -> tuple[MirroredInvite | None, MirrorState]:
        """Read the lists that may be read again, and the code once more: one refresh per
        guild per ``min_refresh_seconds`` for the whole fleet, whatever is asked."""
        now = self._clock()
        due = [
            guild_id
            for guild_id in sorted(self._policy.guilds)
            if not state.record(guild_id).unreadable(now)
            and self._policy.list_due(
                state.record(guild_id), now, within=self._policy.min_refresh_seconds
            )
        ]
        if not due:
            return None, state
        held = []
        before = {guild_id: state.record(guild_id).refreshed_at for guild_id in due}
        for guild_id in due:
            other = self._refresh(guild_id, deadline)
            if other is None or other.failed == DiscordMissingPermissions.code:
                continue  # read now, or found unreadable (its codes go per code)
            if other.failed is None:
                held.append(guild_id)
            elif state.record(guild_id).refreshed_at is None:
                # Never read, and its last read just failed: not a 404 on a guess.
                retry_after = max(other.until - self._clock(), 0.0)
                raise LookupRecentlyFailed(retry_after=retry_after, detail=other.failed)
        state = self._store.state(deadline=deadline)
        listed = self._store.get(code, self._clock(), consistent=True, deadline=deadline)
        wait_until = min(self._clock() + self._policy.wait_seconds, deadline.at)
        while listed is None and held and self._clock() + POLL_SECONDS <= wait_until:
            # Another instance reads these lists now: its result, briefly, not a read of ours.
            self._sleep(POLL_SECONDS)
            state = self._store.state(deadline=deadline)
            held = [g for g in held if state.record(g).refreshed_at == before[g]]
            listed = self._store.get(code, self._clock(), consistent=True, deadline=deadline)
        return listed, state

    def _refresh(self, guild_id: str, deadline: Deadline) -> HeldElsewhere | None:
        """Read the guild's list into the mirror, unless another instance does it now, or
        did and failed (its lease, returned). Read or not, the lease is kept the interval:
        that is the fleet's pace, and a failing Discord is asked no more often."""
        now = self._clock()
        lease = self._leases.acquire(
            guild_work(guild_id), "listing", now, self._lease_seconds, deadline=deadline
        )
        if not isinstance(lease, Lease):
            return lease
        until, failed = now + self._policy.min_refresh_seconds, None
        try:
            until, failed = self._read_lists(guild_id, deadline)
        except InviteProxyError as exc:
            failed = exc.code
            raise
        except Exception:
            failed = "internal_error"  # a bug, not Discord: others are told, not kept waiting
            raise
        finally:
            self._settle(lease, until, deadline, failed=failed)
        return None

    def _read_lists(self, guild_id: str, deadline: Deadline) -> tuple[float, str | None]:
        """Read the guild's list (and the guild, and its vanity invite when due) into the
        store: (until when the lease holds, why the list could not be read)."""
        call_deadline = deadline.within(self._call_seconds)
        listed_at = self._clock()
        try:
            listing = self._discord.list_guild_invites(guild_id, deadline=call_deadline)
        except DiscordMissingPermissions as exc:
            until = listed_at + self._policy.unreadable_retry_seconds
            self._store.mark_unreadable(guild_id, until, deadline=deadline)
            obs.count("GuildListUnreadable")
            obs.logger.warning(
                "the bot cannot list this guild's invites: give it Manage Server "
                "(docs/protections.md); its codes are looked up one by one meanwhile",
                extra={"guild_id": guild_id, "detail": exc.detail},
            )
            return until, exc.code
        guild = self._read_guild(guild_id, deadline)  # its vanity code, and counts while here
        vanity = self._vanity_invite(guild_id, vanity_of(guild) if guild else None, deadline)
        mirror_listing(
            self._store,
            guild_id,
            listing.payload,
            listed_at,
            self._clock(),
            deadline,
            vanity=vanity,
        )
        return listed_at + self._policy.min_refresh_seconds, None

    def _read_guild(self, guild_id: str, deadline: Deadline) -> dict[str, Any] | None:
        try:
            guild = self._discord.guild_with_counts(
                guild_id, deadline=deadline.within(self._call_seconds)
            ).payload
        except InviteProxyError as exc:
            # The listing stands without it; the vanity code and counts are read next time.
            obs.logger.warning("guild not read", extra={"guild_id": guild_id, "error": exc.code})
            return None
        if not isinstance(guild, dict):
            return None
        self._store.record_guild(
            guild_id, counts_of(guild), vanity_of(guild), self._clock(), deadline=deadline
        )
        return guild

    def _vanity_invite(
        self, guild_id: str, code: str | None, deadline: Deadline
    ) -> MirroredInvite | None:
        """The vanity invite, mirrored from its own lookup once per freshness window, so
        that neither its variants nor its spellings cost a call each."""
        if code is None:
            return None
        now = self._clock()
        kept = self._store.get(code, now, consistent=True, deadline=deadline)
        read_at = self._store.state(deadline=deadline).record(guild_id).vanity_at
        if not self._due(read_at):
            return kept  # looked up this window (found or not)
        # Asked once per window whatever it answers: a vanity code that fails is not
        # asked again with every list read.
        self._store.mark_vanity_read(guild_id, now, deadline=deadline)
        try:
            response = self._discord.lookup_invite(
                code, {}, deadline=deadline, call_deadline=deadline.within(self._call_seconds)
            )
        except UnknownInvite:
            return None
        except InviteProxyError as exc:
            obs.logger.warning("vanity invite not read", extra={"error": exc.code})
            return kept  # as it was; read again in a window
        payload = response.payload
        return mirrored(payload, guild_id) if isinstance(payload, dict) else None

    def _settle(
        self, lease: Lease, until: float, deadline: Deadline, *, failed: str | None = None
    ) -> None:
        try:
            self._leases.finish(lease, until, failed=failed, deadline=deadline)
        except TableUnavailable:
            obs.count("CacheError")  # the lease runs out by itself

    @staticmethod
    def _any_unreadable(state: MirrorState, now: float) -> bool:
        return any(record.unreadable(now) for record in state.guilds.values())

    # -- a listed code -----------------------------------------------------------------
    def _from_mirror(
        self, listed: MirroredInvite, state: MirrorState, query: InviteQuery, deadline: Deadline
    ) -> CacheEntry | None:
        now = self._clock()
        guild_id = listed.guild_id
        record = state.record(guild_id)
        if guild_id not in self._policy.guilds or record.unreadable(now):
            return None  # per code: its list is not what the fleet keeps now
        if self._policy.list_due(record, now, within=self._policy.fresh_seconds):
            # Kept true by a read per freshness window, whoever does it: an invite deleted
            # on Discord itself leaves the mirror then.
            relisted = self._relisted(listed, state, query, deadline)
            if relisted is None:
                return self._unlisted(query, deadline)
            listed, record = relisted
        guild = self._counts(guild_id, record, deadline) if query.with_counts else None
        event = None
        if query.guild_scheduled_event_id is not None:
            events = self._events(guild_id, record, deadline)
            event = event_in(events, query.guild_scheduled_event_id)
        body = lookup_body(listed, guild=guild, event=event)
        expiry = datetime.fromtimestamp(listed.expires_at, UTC) if listed.expires_at else None
        obs.count("MirrorAnswer")
        # An event id not the guild's is answered, and kept, as the lookup without it: a
        # flood of random event ids writes nothing.
        answered = query if event is not None else query.without_event()
        # As fresh as its source, the list (or the vanity invite's own lookup) as it was
        # read: a revocation since then keeps this answer out of the cache.
        read_at = record.vanity_at if listed.code == record.vanity else record.refreshed_at
        return invite_entry(
            query.code,
            answered.variant,
            body,
            expiry,
            min(read_at or self._clock(), self._clock()),
            self._cache_policy,
        )

    def _relisted(
        self, listed: MirroredInvite, state: MirrorState, query: InviteQuery, deadline: Deadline
    ) -> tuple[MirroredInvite, GuildRecord] | None:
        """The code as a new read of its guild's list shows it (None: gone from it), or as
        it was when another instance reads the list now."""
        if self._refresh(listed.guild_id, deadline) is None:
            state = self._store.state(deadline=deadline)
            again = self._store.get(query.code, self._clock(), consistent=True, deadline=deadline)
            if again is None:
                return None
            listed = again
        return listed, state.record(listed.guild_id)

    def _unlisted(self, query: InviteQuery, deadline: Deadline) -> CacheEntry:
        now = self._clock()
        until = self._policy.next_refresh(self._store.state(deadline=deadline), now)
        return unlisted_entry(query.code, query.variant, now, until)

    def _counts(self, guild_id: str, record: GuildRecord, deadline: Deadline) -> dict[str, int]:
        if not self._due(record.counts_at):
            return record.counts or {}

        def read() -> None:
            guild = self._discord.guild_with_counts(
                guild_id, deadline=deadline.within(self._call_seconds)
            ).payload
            if isinstance(guild, dict):
                self._store.record_guild(
                    guild_id, counts_of(guild), vanity_of(guild), self._clock(), deadline=deadline
                )

        fresh = self._shared(
            guild_id, "counts", read, have=record.counts is not None, deadline=deadline
        )
        return fresh.counts if fresh and fresh.counts is not None else record.counts or {}

    def _events(
        self, guild_id: str, record: GuildRecord, deadline: Deadline
    ) -> list[dict[str, Any]]:
        known = self._store.events(guild_id, deadline=deadline) if record.events_at else None
        if known is not None and not self._due(record.events_at):
            return known

        def read() -> None:
            events = self._discord.guild_events(
                guild_id, deadline=deadline.within(self._call_seconds)
            ).payload
            if not isinstance(events, list):
                raise DiscordError(detail="the guild's event list is not a list")
            self._store.record_events(guild_id, events, self._clock(), deadline=deadline)

        if self._shared(guild_id, "events", read, have=known is not None, deadline=deadline):
            return self._store.events(guild_id, deadline=deadline) or []
        return known or []

    def _due(self, at: float | None) -> bool:
        return at is None or self._clock() - at >= self._policy.fresh_seconds

    def _shared(
        self,
        guild_id: str,
        work: str,
        read: Callable[[], None],
        *,
        have: bool,
        deadline: Deadline,
    ) -> GuildRecord | None:
        """One instance reads a guild's counts or events per freshness window; the others
        answer with what they have, or wait for it (at most ``wait_seconds``) when they
        have nothing. The guild's record after a read, or None when this used its own."""
        now = self._clock()
        lease = self._leases.acquire(
            guild_work(guild_id), work, now, self._lease_seconds, deadline=deadline
        )
        if isinstance(lease, Lease):
            # Once per freshness window; a failed read is tried again after the interval,
            # as a list is, and the copy there is serves meanwhile.
            until, failed = now + self._policy.fresh_seconds, None
            try:
                read()
            except InviteProxyError as exc:
                until, failed = now + self._policy.min_refresh_seconds, exc.code
                if not have:
                    raise
                obs.logger.warning(f"guild {work} not read", extra={"error": exc.code})
                return None
            finally:
                self._settle(lease, until, deadline, failed=failed)
            return self._store.state(deadline=deadline).record(guild_id)
        if have:
            return None
        if lease.failed is not None:  # the last read failed: not a wait for nothing
            raise LookupRecentlyFailed(retry_after=max(lease.until - now, 0.0), detail=lease.failed)
        wait_until = min(now + self._policy.wait_seconds, deadline.at)
        field = "counts_at" if work == "counts" else "events_at"
        while self._clock() + POLL_SECONDS <= wait_until:
            self._sleep(POLL_SECONDS)
            record = self._store.state(deadline=deadline).record(guild_id)
            if getattr(record, field) is not None:
                return record
        raise LookupInProgress(retry_after=1.0, detail=f"the guild's {work} are being read")
