"""The invite lookup: cache first, Discord when the copy is missing or stale.

On a miss, one instance in the fleet fetches, holding a lease; the others wait
briefly for its result, or serve their stale copy (stale-while-revalidate, or
stale-if-error when the fetch failed). Knows nothing of API Gateway or HTTP;
adapters come in through small protocols, so tests plug in in-memory fakes or real
local servers alike.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from invite_proxy import observability as obs
from invite_proxy.domain.cache_policy import (
    CacheEntry,
    CachePolicy,
    EntryKind,
    invite_entry,
    unknown_entry,
)
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import (
    DiscordError,
    InviteProxyError,
    LookupInProgress,
    LookupRecentlyFailed,
    TableUnavailable,
    UnknownInvite,
)
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.domain.leases import AlreadyKnown, HeldElsewhere, Lease, Withheld
from invite_proxy.domain.payloads import guild_of

if TYPE_CHECKING:
    from invite_proxy.domain.guard import Admission, Admitted, Caller
    from invite_proxy.domain.leases import Claim
    from invite_proxy.domain.payloads import DiscordResponse
    from invite_proxy.services.guild_mode import GuildMode


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int  # after the first attempt
    attempt_seconds: float  # the longest one attempt can take (connect + read timeouts)
    deadline_seconds: float  # a lookup's whole budget, inside the Lambda timeout
    base_delay: float = 0.1
    max_delay: float = 1.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: spreads the fleet's retries instead of synchronising them."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # noqa: S311


@dataclass(frozen=True, slots=True)
class CoalescingPolicy:
    lease_seconds: float  # outlasts any fetch, so only a crashed holder's lease runs out
    wait_seconds: float  # how long a lookup waits for another instance's fetch
    poll_seconds: float = 0.1
    failure_hold_seconds: float = 2.0  # after a failed fetch, the fleet answers from it this long
    # A lease seen held by another instance is taken as held this long at most, without
    # asking again (the in-memory tier's lifetime: what this instance may believe unasked).
    held_note_seconds: float = 0.0


# Leases seen held elsewhere that an instance remembers at most (the oldest go first).
_HELD_NOTES = 1024


class InviteCache(Protocol):
    def get(
        self,
        code: str,
        variant: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = ...,
    ) -> CacheEntry | None: ...
    def put(
        self,
        entry: CacheEntry,
        *,
        fetch_started: float | None = None,
        lease: Lease | None = None,
        deadline: Deadline = ...,
    ) -> bool: ...
    # An entry the table answered through another call (a claim's unknown marker).
    def remember(self, entry: CacheEntry, asked_at: float) -> None: ...
    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = ...
    ) -> bool: ...
    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = ...
    ) -> None: ...


class FetchLeases(Protocol):
    def acquire(
        self, code: str, variant: str, now: float, seconds: float, *, deadline: Deadline = ...
    ) -> Lease | HeldElsewhere: ...
    def claim(
        self,
        code: str,
        variant: str,
        now: float,
        seconds: float,
        *,
        admission: Admission | None = None,
        deadline: Deadline = ...,
    ) -> Claim: ...
    def finish(
        self, lease: Lease, until: float, *, failed: str | None = None, deadline: Deadline = ...
    ) -> None: ...


class InviteSource(Protocol):
    """Discord, as public lookups reach it: through the guard, spending the lookup budget."""

    def lookup_invite(
        self,
        code: str,
        params: Mapping[str, str],
        *,
        deadline: Deadline,
        call_deadline: Deadline,
        caller: Caller = None,
        admitted: Admitted | None = None,
        budget_spent: bool = False,
    ) -> DiscordResponse: ...
    # What a lookup's claim takes for its call (domain/guard.py); None: the guard's own way.
    # Raises when no call can be made at all (no token): nothing is taken for it.
    def admission(self, caller: Caller, deadline: Deadline) -> Admission | None: ...


class CacheStatus(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class LookupResult:
    entry: CacheEntry
    cache_status: CacheStatus
    now: float

    @property
    def found(self) -> bool:
        return self.entry.kind is EntryKind.INVITE

    @property
    def fresh_for(self) -> int:
        return 0 if self.cache_status is CacheStatus.STALE else self.entry.fresh_for(self.now)


@dataclass(frozen=True, slots=True)
class _Fetch:
    """One lookup's ask of Discord: what, by when, and for whom."""

    query: InviteQuery
    deadline: Deadline  # the invocation's: the table's calls end by it
    lookup_deadline: Deadline  # the lookup's own: Discord's call, retries and waits end by it
    caller: Caller  # whose share of the budget a miss spends (resolved only then)
    admitted: Admitted | None  # what the claim took for the first call (domain/guard.py)


class InviteLookupService:
    def __init__(
        self,
        *,
        cache: InviteCache,
        discord: InviteSource,
        leases: FetchLeases,
        policy: CachePolicy,
        coalescing: CoalescingPolicy,
        retry: RetryPolicy,
        allowed_guilds: frozenset[str] | None = None,
        guild_mode: GuildMode | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cache = cache
        self._discord = discord
        self._policy = policy
        self._leases = leases
        self._coalescing = coalescing
        self._retry = retry
        self._allowed_guilds = allowed_guilds
        self._guild_mode = guild_mode
        self._clock = clock
        self._sleep = sleep
        self._held: OrderedDict[tuple[str, str], float] = OrderedDict()

    def lookup(
        self, query: InviteQuery, *, deadline: Deadline | None = None, caller: Caller = None
    ) -> LookupResult:
        """Answer a lookup; the table's calls end by ``deadline`` (the invocation's; none
        by default), and Discord's, waiting on another instance included, by the lookup's own.
        A miss spends ``caller``'s share of the lookup budget (the address that asked)."""
        deadline = deadline or Deadline.never(self._clock)
        now = self._clock()
        lookup_deadline = deadline.within(self._retry.deadline_seconds)
        cached = self._read(query, now, deadline)
        if cached is not None and cached.is_fresh(now):
            return self._result(cached, CacheStatus.HIT, now)
        if self._guild_mode is not None:
            mirrored = self._from_mirror(self._guild_mode, query, cached, deadline)
            if mirrored is not None:
                return mirrored
        if (
            cached is not None
            and self._held_elsewhere(query, now)
            and cached.can_serve_while_revalidating(now, self._policy)
        ):
            # Another instance refreshes it, as seen a moment ago: a busy page's views of a
            # stale invite each cost nothing until then (memory has the copy).
            obs.count("StaleWhileRevalidate")
            return self._result(cached, CacheStatus.STALE, now)
        if self._foreign_event(query, now, deadline):
            # Learned lately: Discord answers this event id as if none were asked.
            obs.count("ForeignEventRemembered")
            return self.lookup(query.without_event(), deadline=deadline, caller=caller)
        try:
            claim = self._claim(query, deadline, lookup_deadline, caller)
        except InviteProxyError as exc:  # the caller's share, or the budget, is spent
            return self._stale_or_raise(cached, exc, self._clock())
        wait_until = min(now + self._coalescing.wait_seconds, lookup_deadline.at)
        while not isinstance(claim, Lease | None):
            if isinstance(claim, AlreadyKnown):
                return self._result(claim.entry, CacheStatus.HIT, self._clock())
            # Another instance is fetching this very code and variant.
            self._note_held(query, claim, now)
            now = self._clock()
            if cached is not None and cached.can_serve_while_revalidating(now, self._policy):
                obs.count("StaleWhileRevalidate")
                return self._result(cached, CacheStatus.STALE, now)
            if claim.failed is not None:
                failed = LookupRecentlyFailed(retry_after=claim.until - now, detail=claim.failed)
                return self._stale_or_raise(cached, failed, now)
            if now + self._coalescing.poll_seconds > wait_until:
                busy = LookupInProgress(retry_after=claim.until - now, detail="lease held")
                return self._stale_or_raise(cached, busy, now)
            self._sleep(self._coalescing.poll_seconds)
            now = self._clock()
            latest = self._read(query, now, deadline, consistent=True)
            if latest is not None and latest.is_fresh(now):
                obs.count("CacheCoalesced")
                return self._result(latest, CacheStatus.HIT, now)
            cached = latest or cached
            # Only the lease, as it stands: the holder's failure, or the lease free (its
            # holder gone). A waiter's polls touch no item the fleet shares; one that
            # takes the lease takes the rest of its call's admission the guard's way.
            claim = self._acquire(query, now, deadline)
        admitted = claim.admitted if claim is not None else None
        fetch = _Fetch(query, deadline, lookup_deadline, caller, admitted)
        return self._fetch_and_store(fetch, cached, claim)

    def guild_invite(
        self,
        guild_id: str,
        *,
        with_counts: bool = False,
        deadline: Deadline | None = None,
        caller: Caller = None,
    ) -> LookupResult:
        """A guild's lasting invite (guild mode), as a lookup of its code answers it; an
        unknown invite when the guild has none, or is not one the proxy serves."""
        deadline = deadline or Deadline.never(self._clock)
        code = None
        if self._guild_mode is not None:
            code = self._guild_mode.lasting_code(guild_id, deadline)
        if code is None:
            raise UnknownInvite(detail=f"guild {guild_id} has no lasting invite here")
        return self.lookup(InviteQuery(code, with_counts), deadline=deadline, caller=caller)

    def _from_mirror(
        self,
        guild_mode: GuildMode,
        query: InviteQuery,
        cached: CacheEntry | None,
        deadline: Deadline,
    ) -> LookupResult | None:
        """Guild mode's answer, from the guilds' own lists; None: look it up per code."""
        try:
            entry = guild_mode.answer(query, deadline)
        except InviteProxyError as exc:
            if exc.serve_stale:
                return self._stale_or_raise(cached, exc, self._clock())
            raise
        if entry is None:
            return None
        if entry.kind is EntryKind.INVITE and entry.variant == query.variant:
            # Kept as the variant's answer for its freshness: the next lookup is one read.
            # (An event id not the guild's is answered as the lookup without it, unkept:
            # random ones write nothing.)
            self._write(entry, deadline, fetch_started=entry.fetched_at)
        # A code no list has is never stored: the next read of the lists may have it.
        return self._result(entry, CacheStatus.MISS, self._clock())

    def _fetch_and_store(
        self, fetch: _Fetch, cached: CacheEntry | None, lease: Lease | None
    ) -> LookupResult:
        deadline = fetch.deadline
        now = self._clock()
        try:
            entry = self._fetch(fetch, now)
        except InviteProxyError as exc:
            failed_at = self._clock()
            if lease is not None and (exc.fleet_block is not None or exc.per_caller):
                # The guard answers this failure for the whole fleet, with its own Retry-After;
                # or it is about this caller alone: others may fetch the key at once.
                self._finish(lease, failed_at, deadline)
            elif lease is not None:
                # Others answer from this failure for a moment rather than each retrying it.
                hold = min(failed_at + self._coalescing.failure_hold_seconds, lease.until)
                self._finish(lease, hold, deadline, failed=exc.code)
            if exc.serve_stale:
                return self._stale_or_raise(cached, exc, failed_at)
            raise
        except BaseException:
            if lease is not None:  # a bug, not Discord: let the next lookup try at once
                self._finish(lease, self._clock(), deadline)
            raise
        # An invite that died in flight is served, not stored. A stored result holds the
        # lease through its freshness, settled with the write: one fetch per window.
        stored = not entry.is_expired(now) and self._write(
            entry, deadline, fetch_started=now, lease=lease
        )
        if lease is not None and not stored:
            self._finish(lease, now, deadline)
        return self._result(entry, CacheStatus.MISS, now)

    def _held_elsewhere(self, query: InviteQuery, now: float) -> bool:
        until = self._held.get((query.code, query.variant))
        return until is not None and now < until

    def _note_held(self, query: InviteQuery, claim: HeldElsewhere, now: float) -> None:
        """Remember for a moment that another instance holds the lease (see the policy)."""
        if self._coalescing.held_note_seconds <= 0 or claim.failed is not None:
            return
        key = (query.code, query.variant)
        self._held[key] = min(claim.until, now + self._coalescing.held_note_seconds)
        self._held.move_to_end(key)
        while len(self._held) > _HELD_NOTES:
            self._held.popitem(last=False)

    def _stale_or_raise(
        self, cached: CacheEntry | None, exc: InviteProxyError, now: float
    ) -> LookupResult:
        if cached is not None and cached.can_serve_stale(now, self._policy):
            obs.logger.warning("serving stale copy", extra={"reason": exc.code})
            return self._result(cached, CacheStatus.STALE, now)
        raise exc

    def _claim(
        self, query: InviteQuery, deadline: Deadline, call_deadline: Deadline, caller: Caller
    ) -> Lease | HeldElsewhere | AlreadyKnown | None:
        """Take the fetch lease, and with it what the call to Discord takes from the fleet
        (its admission: the caller's share and the budget among it); None when the table
        is failing (then this instance fetches, and the guard takes the rest as it can).
        Raises what the lookup answers when the caller's share or the budget is spent."""
        admission = self._discord.admission(caller, call_deadline)
        now = self._clock()  # the second the claim counts the call in: now, not earlier
        try:
            claim = self._leases.claim(
                query.code,
                query.variant,
                now,
                self._coalescing.lease_seconds,
                admission=admission,
                deadline=deadline,
            )
        except TableUnavailable as exc:
            self._cache_failed(exc)
            return None
        if isinstance(claim, Withheld):
            assert admission is not None  # nothing is withheld but an admission's
            raise admission.withheld(claim.name, claim.wait)
        if isinstance(claim, AlreadyKnown):
            self._cache.remember(claim.entry, now)
        return claim

    def _acquire(
        self, query: InviteQuery, now: float, deadline: Deadline
    ) -> Lease | HeldElsewhere | None:
        try:
            return self._leases.acquire(
                query.code, query.variant, now, self._coalescing.lease_seconds, deadline=deadline
            )
        except TableUnavailable as exc:
            self._cache_failed(exc)
            return None

    def _finish(
        self, lease: Lease, until: float, deadline: Deadline, *, failed: str | None = None
    ) -> None:
        try:
            self._leases.finish(lease, until, failed=failed, deadline=deadline)
        except TableUnavailable as exc:
            self._cache_failed(exc)  # the lease runs out by itself

    def _fetch(self, fetch: _Fetch, now: float) -> CacheEntry:
        """Ask Discord, retrying 5xx, timeouts and resets with jittered backoff in time."""
        attempt = 0
        while True:
            try:
                return self._fetch_once(fetch, now, attempt)
            except InviteProxyError as exc:
                if not exc.retry_now:
                    raise
                attempt += 1
                delay = self._retry.backoff(attempt)
                ends = self._clock() + delay + self._retry.attempt_seconds
                if attempt > self._retry.retries or ends > fetch.lookup_deadline.at:
                    raise
                obs.count("UpstreamRetry")
                self._sleep(delay)

    def _fetch_once(self, fetch: _Fetch, now: float, attempt: int) -> CacheEntry:
        query = fetch.query
        try:
            response = self._discord.lookup_invite(
                query.code,
                query.upstream_params(),
                deadline=fetch.deadline,
                call_deadline=fetch.lookup_deadline,
                caller=fetch.caller,
                # The claim took the first call's admission; a retry is a call of its own,
                # and spends the budget again (the budget bounds Discord calls, not lookups).
                admitted=fetch.admitted if attempt == 0 else None,
                budget_spent=attempt == 0
                and fetch.admitted is not None
                and fetch.admitted.admission.spends_budget,
            )
        except UnknownInvite as exc:
            return unknown_entry(query.code, query.variant, exc.detail or "", now, self._policy)
        # Only a miss parses Discord's answer: a cold start that serves a hit never
        # imports pydantic's models.
        from pydantic import ValidationError

        from invite_proxy.domain.models import Invite

        try:
            invite = Invite.model_validate(response.payload)
        except ValidationError:
            obs.count_by("UpstreamError", "ErrorKind", DiscordError.code)
            raise DiscordError(status=response.status, detail="body is not an invite") from None
        event_id = query.guild_scheduled_event_id
        if event_id is not None and "guild_scheduled_event" not in response.payload:
            self._remember_foreign_event(query.code, event_id, now, fetch.deadline)
        allowed = self._allowed_guilds
        if allowed is not None and guild_of(response.payload) not in allowed:
            # Not ours to resolve: answered and cached exactly like an unknown invite.
            obs.count("GuildNotAllowed")
            return unknown_entry(query.code, query.variant, "guild not allowed", now, self._policy)
        return invite_entry(
            query.code, query.variant, response.body, invite.expiry(), now, self._policy
        )

    def _read(
        self, query: InviteQuery, now: float, deadline: Deadline, *, consistent: bool = False
    ) -> CacheEntry | None:
        try:
            return self._cache.get(
                query.code, query.variant, now, consistent=consistent, deadline=deadline
            )
        except TableUnavailable as exc:
            self._cache_failed(exc)
            return None

    def _foreign_event(self, query: InviteQuery, now: float, deadline: Deadline) -> bool:
        event_id = query.guild_scheduled_event_id
        if event_id is None or self._policy.negative_seconds == 0:
            return False
        try:
            return self._cache.foreign_event(query.code, event_id, now, deadline=deadline)
        except TableUnavailable as exc:
            self._cache_failed(exc)
            return False

    def _remember_foreign_event(
        self, code: str, event_id: str, now: float, deadline: Deadline
    ) -> None:
        """An event id that is not the guild's stays learned for the negative-cache time,
        whatever else is asked with it: a lookup of it again is a lookup without it."""
        if self._policy.negative_seconds == 0:
            return
        try:
            until = now + self._policy.negative_seconds
            self._cache.remember_foreign_event(code, event_id, until, deadline=deadline)
        except TableUnavailable as exc:
            self._cache_failed(exc)

    def _write(
        self,
        entry: CacheEntry,
        deadline: Deadline,
        *,
        fetch_started: float,
        lease: Lease | None = None,
    ) -> bool:
        """Store a fetched entry, settling ``lease`` through its freshness if it is stored;
        whether it was stored."""
        if entry.kind is EntryKind.UNKNOWN and self._policy.negative_seconds == 0:
            return False
        try:
            written = self._cache.put(
                entry, fetch_started=fetch_started, lease=lease, deadline=deadline
            )
        except TableUnavailable as exc:
            self._cache_failed(exc)
            return False
        if not written:
            # A DELETE revoked the code while this lookup was fetching it.
            obs.count("CacheWriteSkipped")
            obs.logger.info("not cached: revoked while fetching")
        return written

    @staticmethod
    def _cache_failed(_: TableUnavailable) -> None:
        # Lookups go on through Discord. The table's circuit breaker has said so, once.
        obs.count("CacheError")

    @staticmethod
    def _result(entry: CacheEntry, status: CacheStatus, now: float) -> LookupResult:
        obs.count(f"Cache{status.value.title()}")
        obs.logger.append_keys(cache=status.value)
        return LookupResult(entry, status, now)
