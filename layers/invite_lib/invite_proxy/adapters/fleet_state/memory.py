"""The fleet's state as one instance knows it, in its own memory. The deadline a caller
passes is kept by the table's store; memory answers at once.

The same contract and conditional semantics as the DynamoDB fleet state
(fleet_state/dynamodb.py): blocks never shortened, counters that refuse past a
limit, buckets spent only while Discord said something is left, one probe at a
time. The guard writes everything it learns here as well as to the table, so
when the table is unreachable each instance still honours every block and
bucket it has seen, and keeps to its own share of the rate and budget.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate

from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.fleet_state import (
    PROBE,
    SPENT,
    TURN_SKIP_SECONDS,
    Allowance,
    Block,
    BucketTake,
    turn_wait,
)
from invite_proxy.domain.rate_limits import BucketState, window_of


def _locked[**P, R](
    method: Callable[Concatenate[InstanceFleetState, P], R],
) -> Callable[Concatenate[InstanceFleetState, P], R]:
    def under_lock(self: InstanceFleetState, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            return method(self, *args, **kwargs)

    return under_lock


_ALLOWANCES_KEPT = 256  # past this many, whole allowances are dropped


@dataclass
class _Bucket:
    reset_at: float = 0.0
    remaining: int = 0
    window: float = -math.inf
    probing: str | None = None
    limit: int = 1
    # The line: tickets handed out, and how many have had their turn; and when the
    # last turn was taken or the window opened (a turn open longer is given up).
    queued: int = 0
    served: int = 0
    moved_at: float = 0.0


class InstanceFleetState:
    _owners = itertools.count(1)

    def __init__(self, shared: InstanceFleetState | None = None) -> None:
        # ``shared``: another's memory, seen as a second owner (tests model a fleet so).
        self.blocks: dict[str, Block] = shared.blocks if shared else {}
        self.counters: dict[tuple[str, int], int] = shared.counters if shared else {}
        self.buckets: dict[str, _Bucket] = shared.buckets if shared else {}
        self.allowances: dict[str, float] = shared.allowances if shared else {}
        self.owner = f"instance-{next(self._owners)}"
        # A rule run revokes on several threads: each change is made whole, under the lock.
        self.lock: threading.RLock = shared.lock if shared else threading.RLock()

    @_locked
    def active_blocks(self, now: float, *, deadline: Deadline = NO_DEADLINE) -> list[Block]:
        return [b for b in self.blocks.values() if b.until > now]

    @_locked
    def block(
        self, target: str, until: float, reason: str, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        held = self.blocks.get(target)
        if held is None or held.until < until:
            self.blocks[target] = Block(target, until, reason)

    @_locked
    def count_invalid(self, now: float, *, deadline: Deadline = NO_DEADLINE) -> int:
        return self._add("invalid", window_of(now)) or 0

    @_locked
    def take_allowance(
        self, name: str, now: float, allowance: Allowance, *, deadline: Deadline = NO_DEADLINE
    ) -> float:
        full_at, wait = allowance.take(self.allowances.get(name), now)
        if full_at is not None:
            self.allowances[name] = full_at
            if len(self.allowances) > _ALLOWANCES_KEPT:
                # Those whole again are as good as absent: a flood of callers leaves no trace.
                for old in [k for k, v in self.allowances.items() if v <= now]:
                    del self.allowances[old]
        return wait

    @_locked
    def give_back_allowance(
        self, name: str, allowance: Allowance, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        if name in self.allowances:
            self.allowances[name] -= allowance.every

    @_locked
    def take_second(self, now: float, limit: int, *, deadline: Deadline = NO_DEADLINE) -> bool:
        return self._add("rate", math.floor(now), below=limit) is not None

    def _add(self, counter: str, slot: int, *, below: int | None = None) -> int | None:
        if (counter, slot) not in self.counters:
            # A new second or window: the counter's older slots will never be read again.
            for old in [k for k in self.counters if k[0] == counter and k[1] < slot]:
                del self.counters[old]
        n = self.counters.get((counter, slot), 0)
        if below is not None and n >= below:
            return None
        self.counters[(counter, slot)] = n + 1
        return n + 1

    @_locked
    def take_bucket(
        self,
        bucket: str,
        now: float,
        probe_seconds: float,
        ticket: int | None = None,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> BucketTake:
        item = self.buckets.setdefault(bucket, _Bucket())
        if ticket is None:
            if item.served == item.queued:  # nobody in line
                if item.reset_at > now and item.remaining > 0:
                    item.remaining -= 1
                    return SPENT
                if item.reset_at <= now:
                    return self._probe(item, now, probe_seconds)
            item.queued += 1
            return self._wait(item, item.queued, now)
        if item.served >= ticket:  # its turn was given up: it joins again
            return BucketTake(granted=False, retry_at=now)
        if item.served == ticket - 1 or self._gone_ahead(item, now):
            if item.reset_at > now and item.remaining > 0:
                item.remaining -= 1
                item.served, item.moved_at = ticket, now
                return SPENT
            if item.reset_at <= now:
                item.served = ticket
                return self._probe(item, now, probe_seconds)
        return self._wait(item, ticket, now)

    def _probe(self, item: _Bucket, now: float, probe_seconds: float) -> BucketTake:
        item.remaining, item.reset_at, item.probing = 0, now + probe_seconds, self.owner
        item.moved_at = now
        return PROBE

    @staticmethod
    def _gone_ahead(bucket: _Bucket, now: float) -> bool:
        """Those ahead in line let an open turn go by: they have gone."""
        stale = now - TURN_SKIP_SECONDS
        if bucket.moved_at >= stale:
            return False
        return (bucket.reset_at > now and bucket.remaining > 0) or bucket.reset_at < stale

    @staticmethod
    def _wait(bucket: _Bucket, ticket: int, now: float) -> BucketTake:
        return turn_wait(
            ticket,
            served=bucket.served,
            remaining=bucket.remaining,
            limit=bucket.limit,
            reset_at=bucket.reset_at,
            probing=bucket.probing is not None,
            now=now,
        )

    @_locked
    def record_bucket(
        self, bucket: str, state: BucketState, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        item = self.buckets.setdefault(bucket, _Bucket())
        if item.window < state.window or (
            item.window == state.window and item.remaining > state.remaining
        ):
            item.reset_at, item.remaining = state.reset_at, state.remaining
            item.window, item.probing = state.window, None
            item.limit, item.moved_at = state.limit, state.seen_at

    @_locked
    def end_probe(self, bucket: str, now: float, *, deadline: Deadline = NO_DEADLINE) -> None:
        item = self.buckets.get(bucket)
        if item is not None and item.probing == self.owner:
            item.reset_at, item.probing = now, None
