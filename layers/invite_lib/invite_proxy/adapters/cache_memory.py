"""The invite cache's in-memory tier: a hot key read from the table at most once per
instance per ``seconds``.

An invite embedded on a busy page is one hot item, and every hit used to be one read
of it: the table's partition throttles at a few thousand reads a second, and its
latency is most of a hit's. Here each instance keeps what it read or wrote, for a
second or so, and answers from memory meanwhile. A stale copy is read from the table
each time: the refresh another instance makes shows at once.

What that costs in freshness, and its bound: a DELETE on this instance forgets the
code at once; another instance may go on answering from its copy until the copy's
``seconds`` run out (``MEMORY_CACHE_SECONDS``, 1 s by default, counted from when the
table was asked), and never past the entry's own freshness. DynamoDB's reads are
eventually consistent, so a read made just after a revocation may still return the
copy (typically for under a second): the bound is ``seconds`` plus that. A read that
must see the table's latest (``consistent``: waiting for another instance's fetch)
always goes to the table.

Bounded: at most ``max_entries`` entries, the least recently used codes dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from invite_proxy import observability as obs
from invite_proxy.domain.cache_policy import CacheEntry, EntryKind
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline

if TYPE_CHECKING:
    from invite_proxy.domain.leases import Lease


class TableCache(Protocol):
    """The table's invite cache, as this tier uses it (adapters/dynamodb/cache.py)."""

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
    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = ...) -> list[str]: ...
    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = ...
    ) -> bool: ...
    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = ...
    ) -> None: ...


# Entries kept at most, over every code and variant: each a few kB, so some MB in all.
MAX_ENTRIES = 4096
# Where a code Discord does not know is kept: it answers every variant of the code, as the
# table's own marker does (no event id makes a new entry of it).
_UNKNOWN = "*"


@dataclass(frozen=True, slots=True)
class _Kept:
    entry: CacheEntry
    until: float  # the memory's own limit: ``seconds`` after the table was asked


class MemoryTier:
    """The table's cache behind an instance's memory: InviteCache and EvictingCache both.

    Bounded in entries, not codes: a flood of variants of one code (event ids) cannot
    grow it. Safe across threads (a handler is one request at a time on Lambda; the lock
    costs nothing there).
    """

    def __init__(
        self,
        table: TableCache,
        *,
        seconds: float,
        clock: Callable[[], float],
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self._table = table
        self._seconds = seconds
        self._clock = clock
        self._max_entries = max_entries
        # By code, then variant: a DELETE forgets a code's every variant at once.
        self._kept: OrderedDict[str, dict[str, _Kept]] = OrderedDict()
        self._entries = 0
        self._lock = threading.Lock()

    def get(
        self,
        code: str,
        variant: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> CacheEntry | None:
        if not consistent:
            kept = self._recall(code, variant, now)
            if kept is not None:
                obs.count("CacheMemoryHit")
                return kept
        # The limit counts from before the read: a read that took its time, or retried,
        # leaves the copy no longer in memory than ``seconds`` from when it was asked.
        asked_at = self._clock()
        entry = self._table.get(code, variant, now, consistent=consistent, deadline=deadline)
        if entry is not None:
            self._keep(entry, asked_at)
        return entry

    def put(
        self,
        entry: CacheEntry,
        *,
        fetch_started: float | None = None,
        lease: Lease | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> bool:
        written_at = self._clock()
        written = self._table.put(
            entry, fetch_started=fetch_started, lease=lease, deadline=deadline
        )
        if written:
            self._keep(entry, written_at)
        else:  # a DELETE overtook the fetch: nothing of the code is worth keeping
            self._forget(entry.code)
        return written

    def remember(self, entry: CacheEntry, asked_at: float) -> None:
        """The table's answer through another call (a claim's unknown marker), kept as a read."""
        self._keep(entry, asked_at)

    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = NO_DEADLINE) -> list[str]:
        self._forget(code)  # at once: this instance never answers from it again
        return self._table.evict(code, revoked_at, deadline=deadline)

    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> bool:
        return self._table.foreign_event(code, event_id, now, deadline=deadline)

    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self._table.remember_foreign_event(code, event_id, until, deadline=deadline)

    def _recall(self, code: str, variant: str, now: float) -> CacheEntry | None:
        with self._lock:
            variants = self._kept.get(code)
            if variants is None:
                return None
            for key in (variant, _UNKNOWN):
                kept = variants.get(key)
                if kept is None:
                    continue
                if self._clock() < kept.until and kept.entry.is_fresh(now):
                    self._kept.move_to_end(code)
                    return kept.entry
                del variants[key]  # done with: never answered again, so not kept
                self._entries -= 1
            return None

    def _keep(self, entry: CacheEntry, since: float) -> None:
        if self._seconds <= 0:
            return
        key = _UNKNOWN if entry.kind is EntryKind.UNKNOWN else entry.variant
        with self._lock:
            variants = self._kept.setdefault(entry.code, {})
            if key not in variants:
                self._entries += 1
            variants[key] = _Kept(entry, since + self._seconds)
            self._kept.move_to_end(entry.code)
            while self._entries > self._max_entries:
                _, dropped = self._kept.popitem(last=False)
                self._entries -= len(dropped)

    def _forget(self, code: str) -> None:
        with self._lock:
            self._entries -= len(self._kept.pop(code, {}))
