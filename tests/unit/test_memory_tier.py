"""The in-memory tier in front of the table (adapters/cache_memory.py), as lookups and
DELETEs meet it: each instance reads a hot key once per its lifetime, forgets a code it
revoked at once, and answers another's revoked code no longer than that lifetime."""

from __future__ import annotations

import dataclasses

from invite_proxy.adapters.cache_memory import MemoryTier
from invite_proxy.domain.cache_policy import CachePolicy, EntryKind, invite_entry
from invite_proxy.domain.deadline import NO_DEADLINE
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.services.lookup import CacheStatus
from tests.unit.conftest import World
from tests.unit.fakes import LeaseRecord

QUERY = InviteQuery("hot-1")
POLICY = CachePolicy(
    fresh_seconds=60, max_age_seconds=3600, negative_seconds=60, stale_if_error_seconds=0
)


def table_reads(world: World, lookups: int, instance: object) -> int:
    before = world.table.calls
    for _ in range(lookups):
        assert instance.lookup(QUERY).found  # type: ignore[attr-defined]
    return world.table.calls - before


def test_a_hot_key_is_read_from_the_table_once_per_instance_per_second(world: World) -> None:
    world.discord.add_invite("hot-1")
    first, second = world.lookups(), world.lookups()
    assert first.lookup(QUERY).cache_status is CacheStatus.MISS
    assert table_reads(world, 500, first) == 0  # the fetch's own write is kept in memory
    assert table_reads(world, 500, second) == 1  # another instance: one read, then memory
    world.clock.advance(1.0)
    assert table_reads(world, 500, first) == 1  # its second is over: read once again
    assert len(world.discord.calls) == 1


def test_memory_never_answers_past_the_entrys_own_freshness(world: World) -> None:
    world.discord.add_invite("hot-1")
    lookups = world.lookups(CACHE_FRESH_SECONDS=1, MEMORY_CACHE_SECONDS=5)
    lookups.lookup(QUERY)
    world.clock.advance(1.5)  # memory would keep it 5 s; the entry was fresh for 1
    assert lookups.lookup(QUERY).cache_status is CacheStatus.MISS
    assert len(world.discord.calls) == 2


def test_a_delete_on_this_instance_forgets_the_code_at_once(world: World) -> None:
    world.discord.add_invite("hot-1")
    lookups, revocations = world.api()
    assert lookups.lookup(QUERY).found
    revocations.revoke_request("hot-1", None, actor="a", deadline=NO_DEADLINE)
    assert not lookups.lookup(QUERY).found  # not the copy in memory: Discord says gone


def test_another_instance_answers_a_revoked_code_no_longer_than_its_memory_lasts(
    world: World,
) -> None:
    world.discord.add_invite("hot-1")
    (here, revocations), elsewhere = world.api(), world.lookups()
    assert here.lookup(QUERY).found
    assert elsewhere.lookup(QUERY).found
    revocations.revoke_request("hot-1", None, actor="a", deadline=NO_DEADLINE)
    world.clock.advance(0.9)
    assert elsewhere.lookup(QUERY).found  # the bound: its memory's second
    world.clock.advance(0.2)
    assert not elsewhere.lookup(QUERY).found


def test_a_read_that_must_see_the_tables_latest_is_never_answered_from_memory(
    world: World,
) -> None:
    tier = MemoryTier(world.cache, seconds=1.0, clock=world.clock)
    entry = invite_entry("hot-2", "counts=0#event=-", "{}", None, world.clock.now, POLICY)
    tier.put(entry)
    before = world.table.calls
    assert tier.get("hot-2", "counts=0#event=-", world.clock.now) == entry
    assert world.table.calls == before
    assert tier.get("hot-2", "counts=0#event=-", world.clock.now, consistent=True) == entry
    assert world.table.calls == before + 1


def test_memory_holds_a_bounded_number_of_entries_the_least_used_dropped(world: World) -> None:
    tier = MemoryTier(world.cache, seconds=1.0, clock=world.clock, max_entries=3)
    for n in range(4):
        tier.put(invite_entry(f"c{n}", "counts=0#event=-", "{}", None, world.clock.now, POLICY))
    before = world.table.calls
    for n in (1, 2, 3):
        tier.get(f"c{n}", "counts=0#event=-", world.clock.now)
    assert world.table.calls == before
    tier.get("c0", "counts=0#event=-", world.clock.now)
    assert world.table.calls == before + 1


def test_no_memory_tier_when_its_seconds_are_zero(world: World) -> None:
    world.discord.add_invite("hot-1")
    lookups = world.lookups(MEMORY_CACHE_SECONDS=0)
    lookups.lookup(QUERY)
    assert table_reads(world, 10, lookups) == 10


def test_a_flood_of_event_ids_on_an_unknown_code_keeps_one_entry(world: World) -> None:
    """The table answers every variant of a code Discord does not know from one marker
    (a lookup's claim reads it, and the lookup keeps what it read); memory keeps it once
    too, whatever event id is asked."""
    tier = MemoryTier(world.cache, seconds=1.0, clock=world.clock, max_entries=8)
    lookups = world.lookups()
    assert not lookups.lookup(InviteQuery("nope-1")).found  # Discord: unknown, remembered
    marker = world.cache.unknown["nope-1"]
    before = world.table.calls
    for n in range(2000):
        variant = f"counts=0#event={n}"
        if n == 0:  # the claim's answer, kept as a read
            tier.remember(dataclasses.replace(marker, variant=variant), world.clock.now)
        entry = tier.get("nope-1", variant, world.clock.now)
        assert entry is not None
        assert entry.kind is EntryKind.UNKNOWN
    assert tier._entries == 1
    assert world.table.calls == before


def test_the_memorys_second_counts_from_when_the_table_was_asked(world: World) -> None:
    """A slow read does not stretch the bound: it is kept ``seconds`` from the asking."""
    world.table.call_seconds = 0.4  # each table call takes that long on the fake clock
    tier = MemoryTier(world.cache, seconds=1.0, clock=world.clock)
    tier.put(invite_entry("slow-1", "counts=0#event=-", "{}", None, world.clock.now, POLICY))
    world.clock.advance(1.0)  # the write's second is over
    asked = world.clock.now
    assert tier.get("slow-1", "counts=0#event=-", world.clock.now) is not None  # 0.4 s to read
    world.clock.now = asked + 1.2  # past a second from the asking, not from the answer
    before = world.table.calls
    tier.get("slow-1", "counts=0#event=-", world.clock.now)
    assert world.table.calls == before + 1  # read again


def test_a_stale_hot_key_another_instance_refreshes_costs_a_read_a_view_not_a_claim(
    world: World,
) -> None:
    """While another instance holds the refresh's lease, an instance serves the stale
    copy, reading it each time (the refresh shows as soon as it is written), and claims
    the lease again only when its memory's second is over, not per view."""
    world.discord.add_invite("hot-1")
    first, second = world.lookups(), world.lookups()
    assert first.lookup(QUERY).cache_status is CacheStatus.MISS
    entry = world.cache.entries[("hot-1", QUERY.variant)]
    world.clock.now = entry.fresh_until + 1  # stale, within stale-while-revalidate
    # Another instance is refreshing it, and will be for a while (a slow Discord).
    world.lease_records[("hot-1", QUERY.variant)] = LeaseRecord("elsewhere", world.clock.now + 5)
    before = world.table.calls
    assert second.lookup(QUERY).cache_status is CacheStatus.STALE
    assert world.table.calls - before == 2  # its read and the claim that found it held
    for _ in range(200):
        world.clock.advance(0.004)
        assert second.lookup(QUERY).cache_status is CacheStatus.STALE
    assert world.table.calls - before == 2 + 200  # the views since: a read each, no claim
    world.clock.advance(0.3)  # the second is over: claim again, once
    assert second.lookup(QUERY).cache_status is CacheStatus.STALE
    assert world.table.calls - before == 2 + 200 + 2
    # The refresh lands (the other instance writes it): the very next view reads it.
    now = world.clock.now
    world.cache.put(dataclasses.replace(entry, fetched_at=now, fresh_until=now + 60))
    assert second.lookup(QUERY).cache_status is CacheStatus.HIT


def test_without_the_memory_tier_every_view_asks_again(world: World) -> None:
    world.discord.add_invite("hot-1")
    first, second = world.lookups(), world.lookups(MEMORY_CACHE_SECONDS=0)
    first.lookup(QUERY)
    entry = world.cache.entries[("hot-1", QUERY.variant)]
    world.clock.now = entry.fresh_until + 1
    world.lease_records[("hot-1", QUERY.variant)] = LeaseRecord("elsewhere", world.clock.now + 5)
    before = world.table.calls
    for _ in range(3):
        assert second.lookup(QUERY).cache_status is CacheStatus.STALE
    assert world.table.calls - before == 6  # no note kept: nothing believed unasked
