"""The fleet's manners towards Discord: however many instances run, one careful client.

Before every call to Discord, the guard reads the fleet's blocks (a 429 seen by
any instance, a Cloudflare block, a token that just failed), takes one call
from the per-second rate, for public lookups one lookup from the caller's share and
the budget, and last one request from the route's bucket as Discord last described
it. A public lookup's claim takes all of that but the bucket with its fetch lease,
in one table call (Admission, below), and the guard then takes only the bucket.
After every answer it records what Discord said: the bucket's headers (unless the
fleet's bucket already says as much), and any 429, 401 or block. Waits that end
soon enough, and before the caller's deadline, are waited out; longer ones refuse
the call, so the caller serves stale or answers 429/503 with Retry-After.

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
from typing import TYPE_CHECKING, NamedTuple

from invite_proxy import observability as obs
from invite_proxy.domain.callers import caller_key
from invite_proxy.domain.errors import (
    BudgetExhausted,
    CallerShareExhausted,
    DiscordBlocked,
    DiscordRateLimited,
    DiscordUnauthorized,
    InviteProxyError,
    TableUnavailable,
)
from invite_proxy.domain.fleet_state import Allowance, Block, BucketTake
from invite_proxy.domain.rate_limits import RateLimit

if TYPE_CHECKING:
    from invite_proxy.domain.deadline import Deadline
    from invite_proxy.domain.fleet_state import FleetState

# Who asked, or how to find out when it matters (a miss): a lookup's caller.
Caller = str | Callable[[], str | None] | None

BAN_THRESHOLD = 10_000  # invalid answers per 10 minutes that get an IP banned
# Blocks that stop every call, whatever its bucket: the whole bot, the whole IP, the token.
_FLEET_WIDE_TARGETS = frozenset({"global", "cloudflare", "token"})
# A wait is worth it only if it leaves the call itself at least this long before the deadline;
# a shorter remainder would end in a timeout, after spending the turn (GuardPolicy's default).
CALL_RESERVE_SECONDS = 0.5
# No wait is longer, whatever the deadline: a caller with none (a test, a script) is
# refused a reset an hour away rather than left asleep.
MAX_TURN_WAIT_SECONDS = 60.0


class Admission(NamedTuple):
    """What a public lookup's call takes from the fleet before it is made, but its bucket:
    no block in force on any of ``blocks``, one call from this second's share of the rate,
    and one lookup from each allowance (the caller's share first, then the budget).

    A lookup's claim takes these with its fetch lease, all or none, in one table call
    (adapters/dynamodb/lease_store.py): a miss refused by its share or the budget costs
    that call and nothing to give back, and the guard then takes only the bucket.
    """

    blocks: tuple[str, ...]
    calls_per_second: int
    allowances: tuple[tuple[str, Allowance], ...]
    share: str | None = None  # the caller share's name among them: given back if refused

    @property
    def spends_budget(self) -> bool:
        return any(name == _BUDGET for name, _ in self.allowances)

    def allowance(self, name: str) -> Allowance:
        return next(allowance for taken, allowance in self.allowances if taken == name)

    def withheld(self, name: str, wait: float) -> InviteProxyError:
        """What a lookup answers when ``name``'s allowance is spent for ``wait`` seconds."""
        if name == self.share:
            return _share_spent(name, wait)
        return _budget_spent(self.allowance(name), wait)


class Admitted(NamedTuple):
    """An admission taken, in the rate's ``second``."""

    admission: Admission
    second: int


_SHARE_PREFIX = "caller#"
_BUDGET = "lookup-budget"


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    # A block (after a 429, Cloudflare, a 401) this short is waited out; longer ones are
    # answered at once, with a stale copy where there is one. A turn (the next second of the
    # fleet's rate, a slot in a bucket) is waited for whenever it comes within the deadline.
    max_wait_seconds: float
    # Public lookups, fleet-wide, refilling continuously; None: no budget.
    lookup_budget: Allowance | None
    calls_per_second: int  # fleet-wide, under Discord's 50/s per bot
    instance_calls_per_second: int  # this instance's share, kept to while the table is down
    instance_lookup_budget: Allowance | None  # this instance's share of the budget, likewise
    token_lock_seconds: float  # after a 401, no call for this long
    cloudflare_block_seconds: float  # after a Cloudflare block, no call for at least this long
    invalid_warn_threshold: int  # warn when a window's invalid answers reach this
    probe_seconds: float  # the longest one call can take: a probe's bucket hold
    # What a wait must leave before the call's deadline: the call itself, or for a rule
    # run a whole step, so that a step that waited still finishes what it started.
    call_reserve_seconds: float = CALL_RESERVE_SECONDS
    # Each caller's share of the lookup budget (a caller: domain/callers.py); None: no shares.
    caller_share: Allowance | None = None


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
        self._memory = memory  # this instance's own: adapters.fleet_state.memory
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        # Whether the call this thread has in flight is its bucket's probe: a rule run
        # revokes on several threads at once, each with its own call.
        self._calls = threading.local()

    @property
    def _taken(self) -> BucketTake | None:
        """The fleet's bucket as this thread's call took from it, if the store said."""
        taken: BucketTake | None = getattr(self._calls, "taken", None)
        return taken

    @_taken.setter
    def _taken(self, taken: BucketTake | None) -> None:
        self._calls.taken = taken

    @property
    def _probing(self) -> bool:
        return bool(getattr(self._calls, "probing", False))

    @_probing.setter
    def _probing(self, probing: bool) -> None:
        self._calls.probing = probing

    # -- before a call -------------------------------------------------------------------
    def admission(self, bucket: str, caller: Caller) -> Admission | None:
        """What a public lookup's claim takes for its call in ``bucket`` (see Admission);
        None when this instance knows of a block in force: ``admit`` waits it out or refuses."""
        relevant = (*sorted(_FLEET_WIDE_TARGETS), bucket)
        if any(b.target in relevant for b in self._memory.active_blocks(self._clock())):
            return None
        budget = self._policy.lookup_budget
        allowances: list[tuple[str, Allowance]] = []
        share_name = None
        share = self._policy.caller_share
        key = caller_key(caller() if callable(caller) else caller) if share else None
        if budget is not None and share is not None and key is not None:
            share_name = _SHARE_PREFIX + key
            allowances.append((share_name, share))
        if budget is not None:
            allowances.append((_BUDGET, budget))
        return Admission(relevant, self._policy.calls_per_second, tuple(allowances), share_name)

    def admit(
        self,
        bucket: str,
        deadline: Deadline,
        *,
        call_deadline: Deadline | None = None,
        spend_budget: bool = False,
        caller: Caller = None,
        admitted: Admitted | None = None,
    ) -> None:
        """Let one call in ``bucket`` go to Discord now, or raise what the caller should answer.

        The fleet state's calls end by ``deadline``; no wait ends later than the call
        itself can still be made by ``call_deadline`` (``deadline`` if none). A public
        lookup (``spend_budget``) takes from ``caller``'s share of the budget before
        anything else, so a caller past it costs the fleet one write, and gets it back
        if the fleet refuses the call after all; then from the budget. The bucket
        comes last: a call refused before it holds no bucket request (or probe) that no
        answer would ever give back.
        """
        waits_by = call_deadline or deadline
        self._probing = False
        if admitted is not None:
            # The claim took the rest (Admission): the bucket is all that is left.
            if admitted.admission.spends_budget:
                obs.count("LookupBudgetSpent")
            try:
                self._take_bucket_in(admitted.second, bucket, deadline, waits_by)
            except InviteProxyError:
                name = admitted.admission.share
                if name is not None:
                    allowance = admitted.admission.allowance(name)
                    self._give_back(name, allowance, self._state, deadline)
                raise
            return
        budget = self._policy.lookup_budget if spend_budget else None
        share = self._take_callers_share(caller, deadline) if budget is not None else None
        try:
            self._admit(bucket, deadline, waits_by, budget)
        except InviteProxyError:
            if share is not None:  # the caller's, taken for a call the fleet did not make
                self._give_back(*share, deadline)
            raise

    def _admit(
        self, bucket: str, deadline: Deadline, waits_by: Deadline, budget: Allowance | None
    ) -> None:
        now = self._clock()
        block = self._longest_block(now, bucket, deadline)
        if block is not None:
            self._wait_or_refuse(block, waits_by)
        second = self._take_second_by(deadline, waits_by)
        if budget is not None:
            self._take_from_budget(budget, deadline)
        self._take_bucket_in(second, bucket, deadline, waits_by)

    def _take_bucket_in(
        self, second: int, bucket: str, deadline: Deadline, waits_by: Deadline
    ) -> None:
        """The bucket, after a call from the rate's ``second``: taken again if the bucket's
        wait ran into a later second."""
        now = self._clock()  # the table calls before took their time
        self._take_bucket(bucket, now, deadline, waits_by)
        if math.floor(self._clock()) != second:
            # The second taken before is over (a wait for the bucket, or the calls since
            # the claim, ran into the next): the call must count in this second's share
            # of the rate, or a second could carry more than the fleet's rate.
            try:
                self._take_second_by(deadline, waits_by)
            except InviteProxyError:
                # A probe held with no call would stall the bucket.
                self.observe(None, bucket, deadline)
                raise

    def _take_second_by(self, deadline: Deadline, waits_by: Deadline) -> int:
        """One call from the fleet's per-second rate, waiting for a later second if need be;
        the second it counts in."""
        while not self._take_second(now := self._clock(), deadline):
            next_second = math.floor(now) + 1.0
            self._wait_or_refuse(Block("global", next_second, "rate"), waits_by, math.inf)
        return math.floor(now)

    def _take_bucket(self, bucket: str, now: float, deadline: Deadline, waits_by: Deadline) -> bool:
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
                take = self._state.take_bucket(
                    bucket, now, probe_seconds, fleet_ticket, deadline=deadline
                )
                fleet_ticket = take.ticket
            except TableUnavailable as exc:
                self._fleet_state_failed(exc)
                take = self._memory.take_bucket(bucket, now, probe_seconds, own_ticket)
                own_ticket = take.ticket
            if take.granted:
                self._probing = take.probe
                self._taken = take if own_ticket is None else None
                return waited
            reason = "probe in flight" if take.awaiting_probe else "bucket empty"
            now = self._wait_or_refuse(Block(bucket, take.retry_at, reason), waits_by, math.inf)
            waited = True

    def _longest_block(self, now: float, bucket: str, deadline: Deadline) -> Block | None:
        """The fleet's blocks and this instance's own: what it learnt holds either way."""
        blocks = self._memory.active_blocks(now)
        try:
            blocks += self._state.active_blocks(now, deadline=deadline)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
        relevant = [b for b in blocks if b.target in _FLEET_WIDE_TARGETS or b.target == bucket]
        return max(relevant, key=lambda b: b.until, default=None)

    def _take_second(self, now: float, deadline: Deadline) -> bool:
        try:
            return self._state.take_second(now, self._policy.calls_per_second, deadline=deadline)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
            return self._memory.take_second(now, self._policy.instance_calls_per_second)

    def _take_callers_share(
        self, caller: Caller, deadline: Deadline
    ) -> tuple[str, Allowance, FleetState] | None:
        """One lookup from the caller's share: (its name, the share, the store it was
        taken from) when taken."""
        share = self._policy.caller_share
        if share is None:
            return None
        key = caller_key(caller() if callable(caller) else caller)
        if key is None:
            return None
        name = _SHARE_PREFIX + key
        wait, store = self._take_allowance(name, share, share, deadline)
        if wait > 0:
            raise _share_spent(name, wait)
        return name, share, store

    def _give_back(
        self, name: str, share: Allowance, store: FleetState, deadline: Deadline
    ) -> None:
        """Back to the store that gave it: the fleet's, or this instance's own."""
        try:
            store.give_back_allowance(name, share, deadline=deadline)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)

    def _take_from_budget(self, budget: Allowance, deadline: Deadline) -> None:
        own = self._policy.instance_lookup_budget or budget
        wait, _ = self._take_allowance(_BUDGET, budget, own, deadline)
        if wait > 0:
            raise _budget_spent(budget, wait)
        obs.count("LookupBudgetSpent")

    def _take_allowance(
        self, name: str, fleet: Allowance, own: Allowance, deadline: Deadline
    ) -> tuple[float, FleetState]:
        """The fleet's allowance, or this instance's own share of it while the table is
        down: (the seconds to wait, 0 when taken; the store that answered)."""
        try:
            wait = self._state.take_allowance(name, self._clock(), fleet, deadline=deadline)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)
            return self._memory.take_allowance(name, self._clock(), own), self._memory
        return wait, self._state

    def _wait_or_refuse(
        self, block: Block, waits_by: Deadline, max_wait: float | None = None
    ) -> float:
        """Sleep until the block ends if that fits both waits; else raise the refusal."""
        now = self._clock()  # the table calls since the last reading took time too
        wait = block.until - now
        limit = self._policy.max_wait_seconds if max_wait is None else max_wait
        limit = min(limit, MAX_TURN_WAIT_SECONDS)
        if wait <= limit and block.until + self._policy.call_reserve_seconds <= waits_by.at:
            obs.count("UpstreamWait")
            self._sleep(max(wait, 0.0))
            return self._clock()
        obs.count_by("UpstreamRefused", "Scope", block.target.split(":")[0])
        raise _refusal(block, wait)

    # -- after a call --------------------------------------------------------------------
    def observe(self, rate_limit: RateLimit | None, bucket: str, deadline: Deadline) -> None:
        """Keep what Discord's rate-limit headers said about the bucket, for the fleet."""
        now = self._clock()
        probing, self._probing = self._probing, False
        taken, self._taken = self._taken, None
        state = rate_limit.bucket_state(now) if rate_limit is not None else None
        if state is not None:
            self._memory.record_bucket(bucket, state)
        else:
            self._memory.end_probe(bucket, now)  # a no-op unless this instance holds its probe
        try:
            if state is not None and not (taken is not None and taken.knew(state)):
                # (One the fleet's bucket already says is not written: the write's
                # condition would refuse it, and every call would pay for it.)
                self._state.record_bucket(bucket, state, deadline=deadline)
            elif probing:
                self._state.end_probe(bucket, now, deadline=deadline)
        except TableUnavailable as exc:
            self._fleet_state_failed(exc)

    def observe_error(self, exc: InviteProxyError, bucket: str, deadline: Deadline) -> None:
        """Keep the headers an error came with, count it if Discord does, and block after it."""
        now = self._clock()
        # A 429's headers are kept too: the block below outlasts them.
        self.observe(exc.rate_limit, bucket, deadline)
        if exc.counts_as_invalid:
            self._count_invalid(now, deadline)
        block = self._block_after(exc, bucket, now)
        if block is not None:
            self._memory.block(block.target, block.until, block.reason)
            try:
                self._state.block(block.target, block.until, block.reason, deadline=deadline)
            except TableUnavailable as failure:
                self._fleet_state_failed(failure)

    def _block_after(self, exc: InviteProxyError, bucket: str, now: float) -> Block | None:
        retry_after = exc.retry_after or 0.0
        match exc.fleet_block:
            case "rate_limit":
                target = "global" if exc.rate_limit and exc.rate_limit.is_global else bucket
                return Block(target, now + (retry_after or 1.0), "429")
            case "cloudflare":
                wait = max(retry_after, self._policy.cloudflare_block_seconds)
                return Block("cloudflare", now + wait, "cloudflare")
            case "token":
                return Block("token", now + self._policy.token_lock_seconds, "401")
        return None

    def _count_invalid(self, now: float, deadline: Deadline) -> None:
        obs.count("InvalidResponse")
        try:
            in_window = self._state.count_invalid(now, deadline=deadline)
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


def _share_spent(name: str, wait: float) -> InviteProxyError:
    obs.count("CallerShareExhausted")
    caller = name.removeprefix(_SHARE_PREFIX)
    return CallerShareExhausted(retry_after=wait, detail=f"caller {caller}: share spent")


def _budget_spent(budget: Allowance, wait: float) -> InviteProxyError:
    obs.count("BudgetExhausted")
    return BudgetExhausted(
        retry_after=wait, detail=f"{budget.burst} lookups, one back every {budget.every:g} s"
    )


def _refusal(block: Block, wait: float) -> InviteProxyError:
    """What a call the fleet holds back answers: the error Discord would have sent, unsent."""
    detail = f"fleet block {block.target} ({block.reason}) for {wait:.1f}s more"
    if block.target == "cloudflare":
        return DiscordBlocked(retry_after=wait, detail=detail)
    if block.target == "token":
        return DiscordUnauthorized(retry_after=wait, detail=detail)
    rate_limit = RateLimit(retry_after=wait, is_global=block.target == "global")
    return DiscordRateLimited(retry_after=wait, rate_limit=rate_limit, status=None, detail=detail)
