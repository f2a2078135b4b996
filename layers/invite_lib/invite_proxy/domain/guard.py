"""The fleet's manners towards Discord: however many instances run, one careful client.

Before every call to Discord, the guard reads the fleet's blocks (a 429 seen by
any instance, a Cloudflare block, a token that just failed), takes one call
from the per-second rate, for public lookups one lookup from the 10-minute
budget, and last one request from the route's bucket as Discord last described
it. After every answer it records what Discord said: the bucket's headers, and
any 429, 401 or block. Waits that end soon enough, and before the caller's
deadline, are waited out; longer ones refuse the call, so the caller serves
stale or answers 429/503 with Retry-After.

Everything the guard learns is kept twice: in the fleet state (DynamoDB), for
every instance, and in this instance's own memory. If the fleet state cannot be
reached, the instance goes on alone, as a careful client: it honours every block
and bucket it has seen itself, and keeps to its own share of the rate and the
budget (the fleet's, divided by the concurrency the function is allowed).
Refusing every call instead would turn a table outage into a full outage;
calling freely would earn the 429s that get the bot banned.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from invite_proxy.domain.errors import (
    BudgetExhausted,
    DiscordBlocked,
    DiscordRateLimited,
    DiscordUnauthorized,
    InviteProxyError,
    TableUnavailable,
)
from invite_proxy.domain.rate_limits import BucketState, RateLimit
from invite_proxy.edges import observability as obs

WINDOW_SECONDS = 600  # Discord counts invalid requests per 10 minutes; so does our budget
BAN_THRESHOLD = 10_000  # invalid answers per 10 minutes that get an IP banned
# Scopes that stop every call, whatever its bucket: the whole bot, the whole IP, the token.
_FLEET_SCOPES = frozenset({"global", "cloudflare", "token"})

# Table calls that can land after a caller's deadline, at worst. ``admit`` never starts a
# wait that ends after the deadline, but the calls after its last wait still take their
# time: the blocks, the rate (again after a wait), the budget, the bucket (a take, then a
# probe), six at most. After the Discord call: the headers, the invalid count and a block.
# Deadlines that must hold the worst case (the rule runner's reserve) use these.
ADMIT_CALLS = 6
OBSERVE_CALLS = 3
# How often a caller looks again while another's probe is in flight.
PROBE_POLL_SECONDS = 0.05
# A turn open this long and not taken is given up: its caller has gone (its deadline
# passed, or its instance stopped), and those behind it in line go on without it.
TURN_SKIP_SECONDS = 0.3
# A wait is worth it only if it leaves the call itself at least this long before the deadline;
# a shorter remainder would end in a timeout, after spending the turn.
CALL_RESERVE_SECONDS = 0.5
# No wait is longer, whatever the deadline: a caller with none (a test, a script) is
# refused a reset an hour away rather than left asleep.
MAX_TURN_WAIT_SECONDS = 60.0


def window_of(now: float) -> int:
    return math.floor(now / WINDOW_SECONDS)


def window_end(now: float) -> float:
    return float((window_of(now) + 1) * WINDOW_SECONDS)


@dataclass(frozen=True, slots=True)
class Block:
    scope: str  # "global", "bucket:<id>", "token" or "cloudflare"
    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class BucketTake:
    """The answer to "may I call?": yes, yes as the window's probe, or not before ``retry_at``.

    A caller refused joins the bucket's line: ``ticket`` is its place, which it shows
    when it asks again. While anyone is in line, a newcomer joins the end of it, and
    each turn goes to the first ticket in line: no caller is passed by a later one.
    """

    granted: bool
    probe: bool = False  # granted as the window's probe
    retry_at: float = 0.0
    awaiting_probe: bool = False  # not granted: another instance's probe is in flight
    ticket: int | None = None  # not granted: the caller's place in the bucket's line


def turn_wait(
    ticket: int,
    *,
    served: int,
    remaining: int,
    limit: int,
    reset_at: float,
    probing: bool,
    now: float,
) -> BucketTake:
    """When the holder of ``ticket`` should ask again, ``served`` tickets having had turns.

    Each wakes about when its turn should come, not all at the refill: the next window's
    callers at its reset (the first to probe), later windows' a little after theirs (they
    learn the new reset then), and callers whose turn is in this window's tokens, or
    after a probe in flight, look again soon.
    """
    per_window = max(1, limit)
    ahead = max(0, ticket - 1 - served)
    windows = ahead // per_window
    if reset_at > now and probing:
        retry_at = min(reset_at, now + PROBE_POLL_SECONDS * (1 + windows))
    elif reset_at > now and ahead < remaining:
        retry_at = now + PROBE_POLL_SECONDS  # those ahead are taking theirs
    elif reset_at > now:
        retry_at = reset_at + PROBE_POLL_SECONDS * ((ahead - remaining) // per_window)
    else:
        retry_at = now + PROBE_POLL_SECONDS * (1 + windows)  # the first in line probes
    return BucketTake(
        granted=False, retry_at=retry_at, awaiting_probe=probing and reset_at > now, ticket=ticket
    )


SPENT = BucketTake(granted=True)
PROBE = BucketTake(granted=True, probe=True)


class FleetState(Protocol):
    def active_blocks(self, now: float) -> list[Block]: ...
    def block(self, scope: str, until: float, reason: str) -> None: ...
    def count_invalid(self, now: float) -> int: ...
    def take_budget(self, now: float, limit: int) -> bool: ...
    def take_second(self, now: float, limit: int) -> bool: ...
    def take_bucket(
        self, scope: str, now: float, probe_seconds: float, ticket: int | None = None
    ) -> BucketTake: ...
    def record_bucket(self, scope: str, state: BucketState) -> None: ...
    def end_probe(self, scope: str, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    # A block (after a 429, Cloudflare, a 401) this short is waited out; longer ones are
    # answered at once, with a stale copy where there is one. A turn (the next second of the
    # fleet's rate, a slot in a bucket) is waited for whenever it comes within the deadline.
    max_wait_seconds: float
    lookup_budget: int  # upstream lookups per 10 minutes, fleet-wide; 0 = no budget
    calls_per_second: int  # fleet-wide, under Discord's 50/s per bot
    instance_calls_per_second: int  # this instance's share, kept to while the table is down
    instance_lookup_budget: int  # this instance's share of the budget, likewise
    token_lock_seconds: float  # after a 401, no call for this long
    cloudflare_block_seconds: float  # after a Cloudflare block, no call for at least this long
    invalid_warn_threshold: int  # warn when a window's invalid answers reach this
    probe_seconds: float  # the longest one call can take: a probe's bucket hold


class UpstreamGuard:
    def __init__(
        self,
        state: FleetState,
        memory: FleetState,
        policy: GuardPolicy,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._state = state
        self._memory = memory  # this instance's own: fleet_state.memory.InstanceFleetState
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        # Whether the call this thread has in flight is its bucket's probe: a rule run
        # revokes on several threads at once, each with its own call.
        self._calls = threading.local()

    @property
    def _probing(self) -> bool:
        return bool(getattr(self._calls, "probing", False))

    @_probing.setter
    def _probing(self, probing: bool) -> None:
        self._calls.probing = probing

    # -- before a call -------------------------------------------------------------------
    def admit(self, bucket: str, deadline: float, *, spend_budget: bool = False) -> None:
        """Let one call in ``bucket`` go to Discord now, or raise what the caller should answer.

        No wait ends after ``deadline``. The bucket comes last: a call refused before it
        holds no bucket request (or probe) that no answer would ever give back.
        """
        self._probing = False
        now = self._clock()
        block = self._longest_block(now, bucket)
        if block is not None:
            self._wait_or_refuse(block, deadline)
        second = self._take_second_by(deadline)
        now = self._clock()  # the table calls above took their time
        budget = self._policy.lookup_budget
        if spend_budget and budget and not self._take_budget(now):
            obs.count("BudgetExhausted")
            raise BudgetExhausted(
                retry_after=window_end(now) - now, detail=f"{budget} lookups per 10 minutes"
            )
        if spend_budget and budget:
            obs.count("LookupBudgetSpent")
        if self._take_bucket(bucket, now, deadline) and math.floor(self._clock()) != second:
            # The second taken before the wait is over, and every caller that waited for
            # this refill calls now: each must count in this second's share of the rate.
            try:
                self._take_second_by(deadline)
            except InviteProxyError:
                self.observe(None, bucket)  # a probe held with no call would stall the bucket
                raise

    def _take_second_by(self, deadline: float) -> int:
        """One call from the fleet's per-second rate, waiting for a later second if need be;
        the second it counts in."""
        while not self._take_second(now := self._clock()):
            next_second = math.floor(now) + 1.0
            self._wait_or_refuse(Block("global", next_second, "rate"), deadline, math.inf)
        return math.floor(now)

    def _take_bucket(self, bucket: str, now: float, deadline: float) -> bool:
        """Spend one request from the bucket, waiting for it within the deadline; True
        if it had to wait.

        An empty bucket, or one whose probe is in flight, refills at a known time: a burst
        of lookups is served as fast as the bucket allows, and refused only when a
        lookup's own deadline comes first.
        """
        waited = False
        # A place in the fleet's line, or in this instance's own while the table is down.
        fleet_ticket: int | None = None
        own_ticket: int | None = None
        probe_seconds = self._policy.probe_seconds
        while True:
            try:
                take = self._state.take_bucket(bucket, now, probe_seconds, fleet_ticket)
                fleet_ticket = take.ticket
            except TableUnavailable as exc:
                self._fleet_state_failed(exc)
                take = self._memory.take_bucket(bucket, now, probe_seconds, own_ticket)
                own_ticket = take.ticket
            if take.granted:
                self._probing = take.probe
                return waited
            reason = "probe in flight" if take.awaiting_probe else "bucket empty"
            now = self._wait_or_refuse(Block(bucket, take.retry_at, reason), deadline, math.inf)
            waited = True

    def _longest_block(self, now: float, bucket: str) -> Block | None:
        """The fleet's blocks and this instance's own: what it learnt holds either way."""
        blocks = self._memory.active_blocks(now)
        try:
            blocks += self._state.active_blocks(now)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
        relevant = [b for b in blocks if b.scope in _FLEET_SCOPES or b.scope == bucket]
        return max(relevant, key=lambda b: b.until, default=None)

    def _take_second(self, now: float) -> bool:
        try:
            return self._state.take_second(now, self._policy.calls_per_second)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
            return self._memory.take_second(now, self._policy.instance_calls_per_second)

    def _take_budget(self, now: float) -> bool:
        try:
            return self._state.take_budget(now, self._policy.lookup_budget)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
            return self._memory.take_budget(now, self._policy.instance_lookup_budget)

    def _wait_or_refuse(
        self, block: Block, deadline: float, max_wait: float | None = None
    ) -> float:
        """Sleep until the block ends if that fits both waits; else raise the refusal."""
        now = self._clock()  # the table calls since the last reading took time too
        wait = block.until - now
        limit = self._policy.max_wait_seconds if max_wait is None else max_wait
        limit = min(limit, MAX_TURN_WAIT_SECONDS)
        if wait <= limit and block.until + CALL_RESERVE_SECONDS <= deadline:
            obs.count("UpstreamWait")
            self._sleep(max(wait, 0.0))
            return self._clock()
        obs.count_by("UpstreamRefused", "Scope", block.scope.split(":")[0])
        raise _refusal(block, wait)

    # -- after a call --------------------------------------------------------------------
    def observe(self, rate_limit: RateLimit | None, bucket: str) -> None:
        """Keep what Discord's rate-limit headers said about the bucket, for the fleet."""
        now = self._clock()
        probing, self._probing = self._probing, False
        state = rate_limit.bucket_state(now) if rate_limit is not None else None
        if state is not None:
            self._memory.record_bucket(bucket, state)
        else:
            self._memory.end_probe(bucket, now)  # a no-op unless this instance holds its probe
        try:
            if state is not None:
                self._state.record_bucket(bucket, state)
            elif probing:
                self._state.end_probe(bucket, now)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)

    def observe_error(self, exc: InviteProxyError, bucket: str) -> None:
        """Keep the headers an error came with, count it if Discord does, and block after it."""
        now = self._clock()
        # A 429's headers are kept too: the block below outlasts them.
        self.observe(exc.rate_limit, bucket)
        if exc.counts_as_invalid:
            self._count_invalid(now)
        block = self._block_after(exc, bucket, now)
        if block is not None:
            self._memory.block(block.scope, block.until, block.reason)
            try:
                self._state.block(block.scope, block.until, block.reason)
            except TableUnavailable as failure:
                self._fleet_state_failed(failure)

    def _block_after(self, exc: InviteProxyError, bucket: str, now: float) -> Block | None:
        retry_after = exc.retry_after or 0.0
        match exc.fleet_scope:
            case "rate_limit":
                scope = "global" if exc.rate_limit and exc.rate_limit.is_global else bucket
                return Block(scope, now + (retry_after or 1.0), "429")
            case "cloudflare":
                wait = max(retry_after, self._policy.cloudflare_block_seconds)
                return Block("cloudflare", now + wait, "cloudflare")
            case "token":
                return Block("token", now + self._policy.token_lock_seconds, "401")
        return None

    def _count_invalid(self, now: float) -> None:
        obs.count("InvalidResponse")
        try:
            in_window = self._state.count_invalid(now)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
            in_window = self._memory.count_invalid(now)
        if in_window >= self._policy.invalid_warn_threshold:
            obs.logger.warning(
                "invalid Discord responses approaching the ban threshold",
                extra={"invalid_in_window": in_window, "ban_threshold": BAN_THRESHOLD},
            )

    @staticmethod
    def _fleet_state_failed(_: TableUnavailable) -> None:
        # The table's circuit breaker has said so, once, with the detail.
        obs.count("FleetStateError")


def _refusal(block: Block, wait: float) -> InviteProxyError:
    """What a call the fleet holds back answers: the error Discord would have sent, unsent."""
    detail = f"fleet block {block.scope} ({block.reason}) for {wait:.1f}s more"
    if block.scope == "cloudflare":
        return DiscordBlocked(retry_after=wait, detail=detail)
    if block.scope == "token":
        return DiscordUnauthorized(retry_after=wait, detail=detail)
    rate_limit = RateLimit(retry_after=wait, is_global=block.scope == "global")
    return DiscordRateLimited(retry_after=wait, rate_limit=rate_limit, status=None, detail=detail)
