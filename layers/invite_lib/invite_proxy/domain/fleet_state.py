"""The fleet state's contract: what both its stores promise the guard, and the bucket line's rule.

The stores are side by side in ``adapters/fleet_state/``: the DynamoDB table every
instance shares (``dynamodb``), and one instance's own memory (``memory``), which the
guard falls back on while the table is down. The contract is the domain's, as the port
the guard keeps its state through.

Blocks are never shortened; counters refuse past their limit; a bucket is spent only
while Discord said something is left, and when its window is over one caller takes
the next call as the window's probe. Callers refused wait in the bucket's line:
turns go in ticket order, and a turn left open too long is given up. The contract
tests (tests/integration/test_fleet_state.py) hold both stores to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from invite_proxy.domain.deadline import Deadline
    from invite_proxy.domain.rate_limits import BucketState

# How often a caller looks again while another's probe is in flight.
PROBE_POLL_SECONDS = 0.05
# A turn open this long and not taken is given up: its caller has gone (its deadline
# passed, or its instance stopped), and those behind it in line go on without it.
TURN_SKIP_SECONDS = 0.3


@dataclass(frozen=True, slots=True)
class Block:
    """No call to ``target`` before ``until``."""

    target: str  # "global", a bucket ("bucket:<id>"), "token" or "cloudflare"
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
    # Granted: the bucket as the take left it, where the store says (the window Discord
    # named, and what was left of it), so an answer that says no less is not written back.
    # (Not the answer itself: two stores that answer alike may say more or less of it.)
    window: float | None = field(default=None, compare=False)
    remaining: int | None = field(default=None, compare=False)

    def knew(self, state: BucketState) -> bool:
        """Whether the bucket, as this take left it, already says all that ``state`` does:
        the same window, with no more left than Discord says. (A store keeps a window's
        lowest ``remaining``, and only grows newer windows: it would refuse ``state``.)"""
        return (
            self.window is not None
            and self.remaining is not None
            and state.window == self.window
            and state.remaining >= self.remaining
        )


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


@dataclass(frozen=True, slots=True)
class Allowance:
    """Calls that refill continuously: one every ``every`` seconds, ``burst`` held at most.

    Kept as one time, the generic cell rate algorithm's: when the allowance would be
    whole again (``full_at``). A take moves it ``every`` later, from now if it was
    already whole; it is refused when that would put it more than ``burst`` calls ahead.
    One conditional write in the table, and no cliff: a spent allowance gives one call
    back every ``every`` seconds, not all at once at a window's end.
    """

    every: float
    burst: int

    @classmethod
    def per(cls, calls: int, seconds: float) -> Allowance:
        return cls(every=seconds / calls, burst=calls)

    @property
    def ahead(self) -> float:
        """How far ahead of now ``full_at`` may be after a take."""
        return self.burst * self.every

    def take(self, full_at: float | None, now: float) -> tuple[float | None, float]:
        """(the new ``full_at``, 0) when a call is taken; (None, seconds to wait) if not."""
        after = max(full_at or now, now) + self.every
        if after - now <= self.ahead + 1e-9:
            return after, 0.0
        return None, after - now - self.ahead


SPENT = BucketTake(granted=True)
PROBE = BucketTake(granted=True, probe=True)


class FleetState(Protocol):
    """Each call is made by ``deadline`` or skipped (the DynamoDB store); memory ignores it."""

    def active_blocks(self, now: float, *, deadline: Deadline = ...) -> list[Block]: ...
    def block(
        self, target: str, until: float, reason: str, *, deadline: Deadline = ...
    ) -> None: ...
    def count_invalid(self, now: float, *, deadline: Deadline = ...) -> int: ...
    def take_second(self, now: float, limit: int, *, deadline: Deadline = ...) -> bool: ...
    def take_bucket(
        self,
        bucket: str,
        now: float,
        probe_seconds: float,
        ticket: int | None = None,
        *,
        deadline: Deadline = ...,
    ) -> BucketTake: ...
    def record_bucket(
        self, bucket: str, state: BucketState, *, deadline: Deadline = ...
    ) -> None: ...
    def end_probe(self, bucket: str, now: float, *, deadline: Deadline = ...) -> None: ...
    # 0.0 when one call is taken from the allowance ``name``, else the seconds until one is.
    def take_allowance(
        self, name: str, now: float, allowance: Allowance, *, deadline: Deadline = ...
    ) -> float: ...
    # One call taken and not made (refused afterwards): back to the allowance.
    def give_back_allowance(
        self, name: str, allowance: Allowance, *, deadline: Deadline = ...
    ) -> None: ...
