"""The lookup's decisions, over in-memory adapters and a fake clock: no HTTP, no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from invite_proxy.adapters.discord.routes import Route
from invite_proxy.domain.deadline import NO_DEADLINE
from invite_proxy.domain.errors import (
    BudgetExhausted,
    DiscordError,
    DiscordRateLimited,
    DiscordServerError,
    DiscordTimeout,
    LookupInProgress,
    LookupRecentlyFailed,
)
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.domain.rate_limits import WINDOW_SECONDS
from invite_proxy.services.lookup import CacheStatus
from tests.unit.conftest import World
from tests.unit.fakes import LeaseRecord, rate_limited

PLAIN = InviteQuery.parse("abc-123", None)
COUNTS = InviteQuery.parse("abc-123", {"with_counts": "true"})


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def calls(world: World) -> int:
    return len(world.discord.calls)


def test_a_miss_asks_discord_once_then_hits_until_freshness_ends(world: World) -> None:
    world.discord.add_invite("abc-123")
    lookups = world.lookups(CACHE_FRESH_SECONDS=30)
    first = lookups.lookup(PLAIN)
    assert (first.cache_status, first.found, first.fresh_for) == (CacheStatus.MISS, True, 30)
    world.clock.advance(29)
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.HIT
    assert calls(world) == 1
    world.clock.advance(2)
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.MISS
    assert calls(world) == 2


def test_variants_are_cached_apart(world: World) -> None:
    world.discord.add_invite("abc-123")
    lookups = world.lookups()
    lookups.lookup(PLAIN)
    assert lookups.lookup(COUNTS).cache_status is CacheStatus.MISS
    assert lookups.lookup(COUNTS).cache_status is CacheStatus.HIT
    assert calls(world) == 2


def test_a_copy_never_outlives_its_invite(world: World) -> None:
    world.discord.add_invite("abc-123", expires_at=iso(world.clock.now + 10))
    lookups = world.lookups(STALE_IF_ERROR_SECONDS=3600, UPSTREAM_RETRIES=0)
    assert lookups.lookup(PLAIN).fresh_for == 10
    world.clock.advance(11)
    world.discord.faults.append(DiscordServerError(status=500))
    with pytest.raises(DiscordServerError):  # the expired copy is not even stale-servable
        lookups.lookup(PLAIN)


def test_an_unknown_invite_is_cached_negatively(world: World) -> None:
    lookups = world.lookups(NEGATIVE_CACHE_SECONDS=20)
    assert lookups.lookup(PLAIN).found is False
    world.clock.advance(19)
    second = lookups.lookup(PLAIN)
    assert (second.found, second.cache_status) == (False, CacheStatus.HIT)
    assert calls(world) == 1


def test_an_unknown_code_stays_unknown_whatever_variant_is_asked(world: World) -> None:
    """A flood of variants of one unknown code (counts, random event ids) costs one call."""
    lookups = world.lookups(NEGATIVE_CACHE_SECONDS=60)
    assert lookups.lookup(PLAIN).found is False
    variants = [
        COUNTS,
        *(
            InviteQuery.parse("abc-123", {"guild_scheduled_event_id": str(10**17 + n)})
            for n in range(20)
        ),
    ]
    for query in variants:
        answer = lookups.lookup(query)
        assert (answer.found, answer.cache_status) == (False, CacheStatus.HIT)
    assert calls(world) == 1
    world.clock.advance(61)  # learned for the negative-cache time, then asked again
    assert lookups.lookup(COUNTS).cache_status is CacheStatus.MISS
    assert calls(world) == 2


def test_a_known_code_in_a_new_variant_is_still_fetched(world: World) -> None:
    world.discord.add_invite("abc-123")
    lookups = world.lookups()
    lookups.lookup(PLAIN)
    assert lookups.lookup(COUNTS).cache_status is CacheStatus.MISS
    assert calls(world) == 2


def test_negative_caching_can_be_turned_off(world: World) -> None:
    lookups = world.lookups(NEGATIVE_CACHE_SECONDS=0)
    lookups.lookup(PLAIN)
    lookups.lookup(PLAIN)
    assert calls(world) == 2


def test_a_body_that_is_no_invite_is_an_upstream_error(world: World) -> None:
    world.discord.invites["abc-123"] = {"not": "an invite"}
    with pytest.raises(DiscordError, match="not an invite"):
        world.lookups().lookup(PLAIN)


# -- stale serving ------------------------------------------------------------------------


def test_stale_if_error_serves_an_older_copy_within_its_bound(world: World) -> None:
    world.discord.add_invite("abc-123")
    lookups = world.lookups(CACHE_FRESH_SECONDS=10, STALE_IF_ERROR_SECONDS=100, UPSTREAM_RETRIES=0)
    lookups.lookup(PLAIN)
    world.clock.advance(10 + 99)
    world.discord.faults.append(DiscordServerError(status=500))
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.STALE
    world.clock.advance(3)  # past the failure hold, and past the bound
    world.discord.faults.append(DiscordServerError(status=500))
    with pytest.raises(DiscordServerError):
        lookups.lookup(PLAIN)


@pytest.mark.parametrize(
    "error",
    [
        rate_limited(30.0, "user"),
        DiscordTimeout(),
    ],
)
def test_failures_worth_waiting_out_serve_stale(world: World, error: DiscordError) -> None:
    world.discord.add_invite("abc-123")
    lookups = world.lookups(CACHE_FRESH_SECONDS=10, UPSTREAM_RETRIES=0)
    lookups.lookup(PLAIN)
    world.clock.advance(11)
    world.discord.faults.append(error)
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.STALE


def test_a_spent_budget_serves_stale_without_asking(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.discord.add_invite("def-456")
    lookups = world.lookups(CACHE_FRESH_SECONDS=10, LOOKUP_BUDGET_PER_10_MINUTES=1)
    world.clock.now -= world.clock.now % WINDOW_SECONDS  # the start of a budget window
    lookups.lookup(PLAIN)
    world.clock.advance(11)
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.STALE
    with pytest.raises(BudgetExhausted) as refused:
        lookups.lookup(InviteQuery.parse("def-456", None))
    assert refused.value.retry_after == pytest.approx(WINDOW_SECONDS - 11)
    assert calls(world) == 1


def test_while_another_instance_refreshes_a_recent_copy_is_served_at_once(world: World) -> None:
    world.discord.add_invite("abc-123")
    first, second = world.lookups(CACHE_FRESH_SECONDS=10), world.lookups(CACHE_FRESH_SECONDS=10)
    first.lookup(PLAIN)
    world.clock.advance(11)
    hold_lease(world, seconds=5)  # another instance is mid-fetch
    result = second.lookup(PLAIN)
    assert (result.cache_status, calls(world)) == (CacheStatus.STALE, 1)
    assert world.clock.slept == []


def test_stale_while_revalidate_has_its_own_bound(world: World) -> None:
    world.discord.add_invite("abc-123")
    env = {"CACHE_FRESH_SECONDS": 10, "STALE_WHILE_REVALIDATE_SECONDS": 5}
    lookups = world.lookups(**env)
    lookups.lookup(PLAIN)
    world.clock.advance(10 + 6)  # past the bound: wait for the holder instead
    hold_lease(world, seconds=5)
    with pytest.raises(LookupInProgress):
        world.lookups(**env, STALE_IF_ERROR_SECONDS=0).lookup(PLAIN)
    assert 1.9 <= sum(world.clock.slept) <= 2.0  # polled for COALESCE_WAIT_SECONDS


def hold_lease(world: World, seconds: float) -> None:
    """Another instance holds the fetch lease on PLAIN for ``seconds``."""
    world.lease_records[("abc-123", PLAIN.variant)] = LeaseRecord(
        "elsewhere", world.clock.now + seconds
    )


# -- coalescing ---------------------------------------------------------------------------


def test_a_miss_in_flight_elsewhere_is_waited_for_not_repeated(world: World) -> None:
    world.discord.add_invite("abc-123")
    hold_lease(world, seconds=10)
    # While the waiter polls, the holder's fetch lands in the cache.
    world.clock.meanwhile.append(lambda: _store_fetch(world))
    result = world.lookups().lookup(PLAIN)
    assert (result.cache_status, result.found) == (CacheStatus.HIT, True)
    assert calls(world) == 1  # the holder's, not the waiter's


def _store_fetch(world: World) -> None:
    del world.lease_records[("abc-123", PLAIN.variant)]
    world.lookups().lookup(PLAIN)


def test_a_fetch_that_does_not_come_in_time_is_a_503_with_retry_after(world: World) -> None:
    hold_lease(world, seconds=10)
    with pytest.raises(LookupInProgress) as busy:
        world.lookups(COALESCE_WAIT_SECONDS=1).lookup(PLAIN)
    assert 0 < (busy.value.retry_after or 0) <= 10
    assert calls(world) == 0


def test_a_failed_fetch_is_shared_for_a_moment_not_repeated(world: World) -> None:
    env = {"UPSTREAM_RETRIES": 0, "LOOKUP_FAILURE_HOLD_SECONDS": 2}
    world.discord.faults.append(DiscordServerError(status=500))
    with pytest.raises(DiscordServerError):
        world.lookups(**env).lookup(PLAIN)
    with pytest.raises(LookupRecentlyFailed) as held:
        world.lookups(**env).lookup(PLAIN)
    assert held.value.retry_after == pytest.approx(2)
    world.clock.advance(2.1)
    world.discord.add_invite("abc-123")
    assert world.lookups(**env).lookup(PLAIN).found
    assert calls(world) == 2


def test_a_failure_the_guard_answers_releases_the_lease_at_once(world: World) -> None:
    world.discord.faults.append(rate_limited(0.2, "user"))
    with pytest.raises(DiscordRateLimited):
        world.lookups(UPSTREAM_RETRIES=0).lookup(PLAIN)
    world.clock.advance(0.3)  # the 429's own block is over; no failure is held
    world.discord.add_invite("abc-123")
    assert world.lookups().lookup(PLAIN).cache_status is CacheStatus.MISS


def test_a_lease_holder_keeps_its_lease_through_the_results_freshness(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.lookups(CACHE_FRESH_SECONDS=30).lookup(PLAIN)
    lease = world.lease_records[("abc-123", PLAIN.variant)]
    assert lease.until == pytest.approx(world.clock.now + 30)


def test_a_lookup_racing_a_revocation_does_not_cache_the_revoked_invite(world: World) -> None:
    world.discord.add_invite("abc-123")
    lookups, revocations = world.api()
    world.discord.latency = 1.0

    def revoke_meanwhile(route: Route) -> None:
        revocations.revoke("abc-123", None, actor="t", source="api", deadline=NO_DEADLINE)

    # The DELETE lands while the lookup's answer (the invite, alive) is on the wire.
    world.discord.while_answering.append(revoke_meanwhile)
    assert lookups.lookup(PLAIN).found  # it saw the invite alive, and says so
    assert world.cache.variants_of("abc-123") == []


# -- retries ------------------------------------------------------------------------------


def test_5xx_and_timeouts_are_retried_with_backoff(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.discord.faults += [DiscordServerError(status=502), DiscordTimeout()]
    result = world.lookups(UPSTREAM_RETRIES=2).lookup(PLAIN)
    assert (result.cache_status, calls(world)) == (CacheStatus.MISS, 3)
    assert len(world.clock.slept) == 2
    assert all(0 <= s <= 1.0 for s in world.clock.slept)


def test_retries_are_bounded(world: World) -> None:
    world.discord.faults += [DiscordServerError(status=500)] * 5
    with pytest.raises(DiscordServerError):
        world.lookups(UPSTREAM_RETRIES=2).lookup(PLAIN)
    assert calls(world) == 3


def test_a_4xx_is_never_retried(world: World) -> None:
    world.discord.faults.append(DiscordError(status=400, detail="50035"))
    with pytest.raises(DiscordError):
        world.lookups(UPSTREAM_RETRIES=2).lookup(PLAIN)
    assert calls(world) == 1


def test_no_retry_starts_that_cannot_finish_before_the_deadline(world: World) -> None:
    world.discord.latency = 3.0  # each attempt takes 3 s of an 8 s deadline
    world.discord.faults += [DiscordServerError(status=500)] * 3
    env = {"UPSTREAM_RETRIES": 5, "DISCORD_CONNECT_TIMEOUT": 1, "DISCORD_READ_TIMEOUT": 2}
    start = world.clock.now
    with pytest.raises(DiscordServerError):
        world.lookups(**env).lookup(PLAIN)
    assert calls(world) == 2
    assert world.clock.now - start <= 8


# -- the table failing --------------------------------------------------------------------


def test_a_failing_table_does_not_fail_lookups(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.table.down = True
    lookups = world.lookups()
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.MISS
    assert lookups.lookup(PLAIN).cache_status is CacheStatus.MISS
    assert calls(world) == 2


def test_an_event_id_not_the_guilds_stays_learned_whatever_else_is_asked(world: World) -> None:
    world.discord.add_invite("abc-123")
    lookups = world.lookups(NEGATIVE_CACHE_SECONDS=60)
    lookups.lookup(PLAIN)
    asked = InviteQuery.parse("abc-123", {"with_counts": "1", "guild_scheduled_event_id": "77"})
    assert lookups.lookup(asked).cache_status is CacheStatus.MISS  # Discord: not its event
    assert calls(world) == 2
    # The same event id with another variant: answered as the lookup without it (a hit).
    again = lookups.lookup(InviteQuery.parse("abc-123", {"guild_scheduled_event_id": "0077"}))
    assert again.cache_status is CacheStatus.HIT
    assert again.entry.body == lookups.lookup(PLAIN).entry.body
    assert calls(world) == 2
    world.clock.advance(61)  # learned for the negative-cache time, then asked again
    lookups.lookup(InviteQuery.parse("abc-123", {"guild_scheduled_event_id": "77"}))
    assert calls(world) == 3


def test_an_event_id_is_a_number_one_key_however_it_is_written() -> None:
    spelled = [InviteQuery.parse("abc-123", {"guild_scheduled_event_id": e}) for e in ("5", "005")]
    assert spelled[0].variant == spelled[1].variant == "counts=0#event=5"
