"""The fleet's state as one instance knows it, in its own memory.

The same contract and conditional semantics as the DynamoDB fleet state
(dynamodb/fleet_state.py): blocks never shortened, counters that refuse past a
limit, buckets spent only while Discord said something is left, one probe at a
time. The guard writes everything it learns here as well as to the table, so
when the table is unreachable each instance still honours every block and
bucket it has seen, and keeps to its own share of the rate and budget.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from invite_proxy.rate_limits import BucketState
from invite_proxy.upstream_guard import (
    PROBE,
    PROBE_POLL_SECONDS,
    SPENT,
    Block,
    BucketTake,
    window_of,
)


@dataclass
class _Bucket:
    reset_at: float = 0.0
    remaining: int = 0
    window: float = -math.inf
    probing: str | None = None


class InstanceFleetState:
    _owners = itertools.count(1)

    def __init__(self, shared: InstanceFleetState | None = None) -> None:
        # ``shared``: another's memory, seen as a second owner (tests model a fleet so).
        self.blocks: dict[str, Block] = shared.blocks if shared else {}
        self.counters: dict[tuple[str, int], int] = shared.counters if shared else {}
        self.buckets: dict[str, _Bucket] = shared.buckets if shared else {}
        self.owner = f"instance-{next(self._owners)}"

    def active_blocks(self, now: float) -> list[Block]:
        return [b for b in self.blocks.values() if b.until > now]

    def block(self, scope: str, until: float, reason: str) -> None:
        held = self.blocks.get(scope)
        if held is None or held.until < until:
            self.blocks[scope] = Block(scope, until, reason)

    def count_invalid(self, now: float) -> int:
        return self._add("invalid", window_of(now)) or 0

    def take_budget(self, now: float, limit: int) -> bool:
        return self._add("budget", window_of(now), below=limit) is not None

    def take_second(self, now: float, limit: int) -> bool:
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

    def take_bucket(self, scope: str, now: float, probe_seconds: float) -> BucketTake:
        bucket = self.buckets.setdefault(scope, _Bucket())
        if bucket.reset_at > now and bucket.remaining > 0:
            bucket.remaining -= 1
            return SPENT
        if bucket.reset_at > now and bucket.probing:
            retry_at = min(bucket.reset_at, now + PROBE_POLL_SECONDS)
            return BucketTake(granted=False, retry_at=retry_at, awaiting_probe=True)
        if bucket.reset_at > now:
            return BucketTake(granted=False, retry_at=bucket.reset_at)
        bucket.remaining, bucket.reset_at, bucket.probing = 0, now + probe_seconds, self.owner
        return PROBE

    def record_bucket(self, scope: str, state: BucketState) -> None:
        bucket = self.buckets.setdefault(scope, _Bucket())
        if bucket.window < state.window or (
            bucket.window == state.window and bucket.remaining > state.remaining
        ):
            bucket.reset_at, bucket.remaining = state.reset_at, state.remaining
            bucket.window, bucket.probing = state.window, None

    def end_probe(self, scope: str, now: float) -> None:
        bucket = self.buckets.get(scope)
        if bucket is not None and bucket.probing == self.owner:
            bucket.reset_at, bucket.probing = now, None
