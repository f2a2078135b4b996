"""The invite cache's in-memory tier: a hot key read from the table at most once per
instance per ``seconds``.

An invite embedded on a busy page is one hot item, and every hit used to be one read
of it: the table's partition throttles at a few thousand reads a second, and its
latency is most of a hit's. Here each instance keeps what it read or wrote, for a
second or so, and answers from memory meanwhile.

What that costs in freshness, and its bound: a DELETE on this instance forgets the
code at once; another instance may go on answering from its copy until the copy's
``seconds`` run out (``MEMORY_CACHE_SECONDS``, 1 s by default), never longer, and
never past the entry's own freshness. A read that must see the table's latest
(``consistent``: waiting for another instance's fetch) always goes to the table.

Bounded: at most ``max_codes`` codes, the least recently used dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from invite_proxy import observability as obs
from invite_proxy.domain.cache_policy import CacheEntry
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline


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
        self, entry: CacheEntry, *, fetch_started: float | None = None, deadline: Deadline = ...
    ) -> bool: ...
    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = ...) -> list[str]: ...
    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = ...
    ) -> bool: ...
    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = ...
    ) -> None: ...


# Some thousands of hot codes, each a few variants of a few kB: some MB at most.
MAX_CODES = 2048


@dataclass(frozen=True, slots=True)
class _Kept:
    entry: CacheEntry
    until: float  # the memory's own limit: ``seconds`` after the table was read


class MemoryTier:
    """The table's cache behind an instance's memory: InviteCache and EvictingCache both."""

    def __init__(
        self,
        table: TableCache,
        *,
        seconds: float,
        clock: Callable[[], float],
        max_codes: int = MAX_CODES,
    ) -> None:
        self._table = table
        self._seconds = seconds
        self._clock = clock
        self._max_codes = max_codes
        # By code, then variant: a DELETE forgets a code's every variant at once.
        self._kept: OrderedDict[str, dict[str, _Kept]] = OrderedDict()

    def get(
        self,
        code: str,
        variant: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> CacheEntry | None:
        kept = self._kept.get(code, {}).get(variant)
        if (
            kept is not None
            and not consistent
            and self._clock() < kept.until
            and kept.entry.is_fresh(now)
        ):
            self._kept.move_to_end(code)
            obs.count("CacheMemoryHit")
            return kept.entry
        entry = self._table.get(code, variant, now, consistent=consistent, deadline=deadline)
        if entry is not None:
            self._keep(entry)
        return entry

    def put(
        self,
        entry: CacheEntry,
        *,
        fetch_started: float | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> bool:
        written = self._table.put(entry, fetch_started=fetch_started, deadline=deadline)
        if written:
            self._keep(entry)
        else:  # a DELETE overtook the fetch: nothing of the code is worth keeping
            self._kept.pop(entry.code, None)
        return written

    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = NO_DEADLINE) -> list[str]:
        self._kept.pop(code, None)  # at once: this instance never answers from it again
        return self._table.evict(code, revoked_at, deadline=deadline)

    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> bool:
        return self._table.foreign_event(code, event_id, now, deadline=deadline)

    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        self._table.remember_foreign_event(code, event_id, until, deadline=deadline)

    def _keep(self, entry: CacheEntry) -> None:
        if self._seconds <= 0:
            return
        variants = self._kept.setdefault(entry.code, {})
        variants[entry.variant] = _Kept(entry, self._clock() + self._seconds)
        self._kept.move_to_end(entry.code)
        while len(self._kept) > self._max_codes:
            self._kept.popitem(last=False)
