"""The guard's decisions on the one road to Discord: blocks, rate, buckets, budget, deadlines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from invite_proxy.adapters.discord.guarded import GuardedDiscord
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import (
    BudgetExhausted,
    CredentialsUnavailable,
    DiscordBlocked,
    DiscordMissingPermissions,
    DiscordRateLimited,
    DiscordUnauthorized,
    InviteProxyError,
    UnknownInvite,
)
from invite_proxy.domain.fleet_state import PROBE_POLL_SECONDS
from invite_proxy.domain.guard import CALL_RESERVE_SECONDS
from invite_proxy.domain.rate_limits import WINDOW_SECONDS, BucketState, RateLimit
from invite_proxy.edges.settings import ApiSettings
from invite_proxy.edges.wiring import guarded_discord
from tests.unit.conftest import World
from tests.unit.fakes import InMemoryFleetState, rate_limited

FAR = NO_DEADLINE


def instance(world: World, fleet: InMemoryFleetState | None = None, **env: Any) -> GuardedDiscord:
    """One Lambda instance's road to Discord, over the world's shared fleet state."""
    settings = ApiSettings.from_env(
        {"CACHE_TABLE_NAME": "unit-table", **{k: str(v) for k, v in env.items()}}
    )
    return guarded_discord(
        settings,
        world.discord,
        fleet or world.fleet.view(),
        lookup_budget=settings.lookup_budget_per_10_minutes,
        instance_lookup_budget=settings.instance_lookup_budget,
        clock=world.clock,
        sleep=world.clock.sleep,
    )


@pytest.fixture
def road(world: World) -> GuardedDiscord:
    world.discord.add_invite("abc-123")
    world.discord.add_invite("def-456")
    return instance(world)


def spend_seconds(world: World, calls: int, *, limit: int) -> None:
    """Other instances' calls, taken from this second's share of the fleet's rate."""
    for _ in range(calls):
        assert world.fleet.take_second(world.clock.now, limit)


def lookup(road: GuardedDiscord, code: str = "abc-123", deadline: Deadline = FAR) -> Any:
    return road.lookup_invite(code, {}, deadline=deadline, call_deadline=deadline)


# -- blocks -------------------------------------------------------------------------------


def test_a_429_blocks_its_bucket_for_the_whole_fleet(world: World, road: GuardedDiscord) -> None:
    world.discord.faults.append(rate_limited(30.0, "user"))
    with pytest.raises(DiscordRateLimited):
        lookup(road)
    with pytest.raises(DiscordRateLimited) as refused:
        lookup(instance(world), "def-456")  # another instance, another code, same bucket
    assert refused.value.retry_after == pytest.approx(30.0)
    assert len(world.discord.calls) == 1
    # Another bucket is not held back.
    assert instance(world).delete_invite("def-456", None, deadline=FAR).status == 200


def test_a_global_429_blocks_every_bucket(world: World, road: GuardedDiscord) -> None:
    world.discord.faults.append(rate_limited(5.0, "global", is_global=True))
    with pytest.raises(DiscordRateLimited):
        lookup(road)
    with pytest.raises(DiscordRateLimited):
        road.delete_invite("abc-123", None, deadline=FAR)
    assert len(world.discord.calls) == 1


def test_a_short_block_is_waited_out(world: World, road: GuardedDiscord) -> None:
    world.discord.faults.append(rate_limited(0.3, "user"))
    with pytest.raises(DiscordRateLimited):
        lookup(road)
    assert lookup(road).status == 200
    assert world.clock.slept == [pytest.approx(0.3)]


def test_a_cloudflare_block_lasts_at_least_its_floor(world: World, road: GuardedDiscord) -> None:
    world.discord.faults.append(DiscordBlocked(status=403, retry_after=5.0))
    with pytest.raises(DiscordBlocked):
        lookup(road)
    world.clock.advance(599)
    with pytest.raises(DiscordBlocked) as refused:
        road.list_guild_invites("1000", deadline=FAR)
    assert refused.value.retry_after == pytest.approx(1.0)
    world.clock.advance(1.1)
    assert lookup(road).status == 200


def test_a_401_locks_the_token(world: World, road: GuardedDiscord) -> None:
    world.discord.faults.append(DiscordUnauthorized(status=401))
    with pytest.raises(DiscordUnauthorized):
        lookup(road)
    with pytest.raises(DiscordUnauthorized):
        road.delete_invite("abc-123", None, deadline=FAR)
    world.clock.advance(60.1)
    assert lookup(road).status == 200


@pytest.mark.parametrize(
    ("error", "invalid"),
    [
        (rate_limited(0.0, "user"), 1),
        (rate_limited(0.0, "shared"), 0),
        (DiscordMissingPermissions(status=403), 1),
        (DiscordUnauthorized(status=401), 1),
        (UnknownInvite(), 0),
    ],
)
def test_invalid_answers_are_counted_as_discord_counts_them(
    world: World, road: GuardedDiscord, error: InviteProxyError, invalid: int
) -> None:
    world.discord.faults.append(error)
    with pytest.raises(type(error)):
        lookup(road)
    counted = sum(n for (counter, _), n in world.fleet.counters.items() if counter == "invalid")
    assert counted == invalid


def test_a_failing_fleet_state_lets_calls_through(world: World, road: GuardedDiscord) -> None:
    world.table.down = True
    assert lookup(road).status == 200
    assert lookup(road, "def-456").status == 200


@pytest.mark.parametrize(
    ("error", "scope"),
    [
        (rate_limited(30.0, "user"), "bucket"),
        (rate_limited(30.0, "global", is_global=True), "global"),
        (DiscordBlocked(status=403, retry_after=5.0), "cloudflare"),
        (DiscordUnauthorized(status=401), "token"),
    ],
)
def test_with_the_table_down_an_instance_honours_every_block_it_learns(
    world: World, road: GuardedDiscord, error: InviteProxyError, scope: str
) -> None:
    world.table.down = True
    world.discord.faults.append(error)
    with pytest.raises(type(error)):
        lookup(road)
    with pytest.raises(type(error)):
        lookup(road, "def-456")  # refused by this instance's own memory, never sent
    assert len(world.discord.calls) == 1
    if scope != "bucket":  # a bucket's 429 holds that bucket only
        with pytest.raises(type(error)):
            road.delete_invite("abc-123", None, deadline=FAR)
        assert len(world.discord.calls) == 1


def test_with_the_table_down_an_instance_keeps_to_the_buckets_it_has_seen(
    world: World,
) -> None:
    world.discord.add_invite("abc-123")
    world.discord.rate_limit = RateLimit(limit=5, remaining=0, reset=1.0, reset_after=9.0)
    road = instance(world)
    world.table.down = True
    lookup(road)  # its answer: the bucket is empty for 9 s, past a lookup's 8 s deadline
    with pytest.raises(DiscordRateLimited) as refused:
        lookup(road, deadline=Deadline(world.clock.now + 8.0, world.clock))
    assert refused.value.retry_after == pytest.approx(9.0)
    assert len(world.discord.calls) == 1


def test_with_the_table_down_an_instance_keeps_to_its_share_of_the_rate(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.clock.now = float(int(world.clock.now))
    # 40 a second for the fleet, at most 10 instances: 4 a second each.
    road = instance(world, FLEET_CALLS_PER_SECOND=40, MAX_CONCURRENCY=10)
    world.table.down = True
    for _ in range(4):
        lookup(road)
    assert world.clock.slept == []
    lookup(road)  # the fifth waits for the next second: its turn comes within the deadline
    assert world.clock.slept == [pytest.approx(1.0)]
    for _ in range(3):
        lookup(road)
    assert world.clock.slept == [pytest.approx(1.0)]
    assert len(world.discord.calls) == 8


def test_with_the_table_down_an_instance_spends_only_its_share_of_the_budget(
    world: World,
) -> None:
    world.discord.add_invite("abc-123")
    world.clock.now -= world.clock.now % WINDOW_SECONDS
    road = instance(world, LOOKUP_BUDGET_PER_10_MINUTES=200, MAX_CONCURRENCY=10)
    world.table.down = True
    for _ in range(20):
        lookup(road)
        world.clock.advance(1)
    with pytest.raises(BudgetExhausted):
        lookup(road)


def test_when_the_table_comes_back_the_fleet_state_decides_again(world: World) -> None:
    world.discord.add_invite("abc-123")
    road = instance(world, FLEET_CALLS_PER_SECOND=40, MAX_CONCURRENCY=40)
    world.clock.now = float(int(world.clock.now))
    world.table.down = True
    lookup(road)  # one a second, alone
    world.table.down = False
    for _ in range(5):
        lookup(road)  # the fleet's 40 a second again
    assert world.clock.slept == []


# -- rate and buckets ---------------------------------------------------------------------


def test_the_fleet_rate_holds_calls_to_the_next_second(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.clock.now = float(int(world.clock.now)) + 0.8
    road = instance(world, FLEET_CALLS_PER_SECOND=2, RATE_LIMIT_WAIT_SECONDS=0.5)
    lookup(road)
    lookup(road)
    lookup(road)  # the third waits 0.2 s for the next second
    assert world.clock.slept == [pytest.approx(0.2)]


def test_a_caller_waits_for_a_later_second_as_long_as_its_deadline_allows(world: World) -> None:
    world.discord.add_invite("abc-123")
    start = float(int(world.clock.now)) + 0.5
    world.clock.now = start
    road = instance(world, FLEET_CALLS_PER_SECOND=1)
    world.fleet.take_second(start, 1)  # this second's one call is taken
    # While it waits, another instance takes the next second's too.
    world.clock.meanwhile.append(lambda: spend_seconds(world, 1, limit=1))
    assert lookup(road, deadline=Deadline(start + 8.0, world.clock)).status == 200
    assert world.clock.slept == [pytest.approx(0.5), pytest.approx(1.0)]


def test_a_caller_that_waited_for_a_refill_counts_in_the_second_it_calls(world: World) -> None:
    """Callers that took their seconds apart all wake at the refill: each must count in the
    second it calls in, or together they outrun the fleet's rate."""
    world.discord.add_invite("abc-123")
    start = float(int(world.clock.now)) + 0.1
    world.clock.now = start
    world.discord.rate_limit = RateLimit(limit=5, remaining=0, reset=1.0, reset_after=1.1)
    lookup(instance(world, FLEET_CALLS_PER_SECOND=2))  # the probe: empty until start + 1.1
    waiting = instance(world, FLEET_CALLS_PER_SECOND=2)
    # While it waits for the refill, two other callers spend the new second.
    world.clock.meanwhile.append(lambda: spend_seconds(world, 2, limit=2))
    assert lookup(waiting, deadline=Deadline(start + 8.0, world.clock)).status == 200
    assert world.clock.now >= start - 0.1 + 2.0  # it called in the second after
    assert world.clock.slept == [pytest.approx(1.1), pytest.approx(0.8)]


def empty_bucket(world: World, seconds: float) -> float:
    """A tenth into a second, the invites bucket is empty for ``seconds``: that moment."""
    world.discord.add_invite("abc-123")
    start = world.clock.now = float(int(world.clock.now)) + 0.1
    empty = BucketState(5, 0, start + seconds, window=1.0, discord_bucket="b", seen_at=start)
    world.fleet.record_bucket("bucket:invites", empty)
    return start


def test_a_probe_refused_its_second_is_given_back(world: World) -> None:
    start = empty_bucket(world, 1.0)
    road = instance(world, FLEET_CALLS_PER_SECOND=1)
    # While it waits out the empty bucket, the next second is spent elsewhere.
    world.clock.meanwhile.append(lambda: spend_seconds(world, 1, limit=1))
    # It probes at the refill, but the second after comes too close to its deadline:
    # refused, and the probe it held is let go at once, so the bucket does not stall
    # until the probe's time runs out.
    with pytest.raises(DiscordRateLimited):
        lookup(road, deadline=Deadline(start + 1.5, world.clock))
    assert world.fleet.buckets["bucket:invites"].probing is None
    assert world.discord.calls == []


def test_a_caller_that_waited_within_its_second_takes_no_second_again(world: World) -> None:
    start = empty_bucket(world, 0.5)
    road = instance(world, FLEET_CALLS_PER_SECOND=2)
    assert lookup(road, deadline=Deadline(start + 8.0, world.clock)).status == 200
    assert world.fleet.counters[("rate", int(start))] == 1  # the one it took counts


def test_a_lookups_call_ends_by_its_deadline(world: World, road: GuardedDiscord) -> None:
    """Its fetch lease outlasts the lookup's deadline: the call must not."""
    seen: list[float] = []
    request = world.discord.request

    def spy(route: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["deadline"].at)
        return request(route, **kwargs)

    world.discord.request = spy  # type: ignore[method-assign]
    lookup(road, deadline=Deadline(world.clock.now + 8.0, world.clock))
    assert seen == [pytest.approx(world.clock.now + 8.0)]


def test_an_empty_bucket_is_waited_out_within_the_deadline_or_refused(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.discord.rate_limit = RateLimit(limit=5, remaining=0, reset=1.0, reset_after=0.4)
    road = instance(world, RATE_LIMIT_WAIT_SECONDS=0.5)
    lookup(road)  # the probe: its answer says the bucket is empty for 0.4 s
    lookup(road)
    assert world.clock.slept == [pytest.approx(0.4)]
    # A turn is not a block: RATE_LIMIT_WAIT_SECONDS does not cut it short, the deadline does.
    world.discord.rate_limit = RateLimit(limit=5, remaining=0, reset=2.0, reset_after=3.0)
    lookup(road)
    lookup(road, deadline=Deadline(world.clock.now + 8.0, world.clock))  # a lookup's deadline
    assert world.clock.slept[-1] == pytest.approx(3.0)
    # A turn that leaves the call less than its reserve before the deadline: refused at once.
    world.discord.rate_limit = RateLimit(limit=5, remaining=0, reset=3.0, reset_after=7.8)
    lookup(road)
    with pytest.raises(DiscordRateLimited) as refused:
        lookup(road, deadline=Deadline(world.clock.now + 8.0, world.clock))
    assert refused.value.retry_after == pytest.approx(7.8)
    assert len(world.discord.calls) == 5


def test_an_unseen_bucket_lets_one_probe_through_and_its_answer_opens_it(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.discord.rate_limit = RateLimit(limit=5, remaining=4, reset=1.0, reset_after=1.0)
    first, second = instance(world), instance(world)
    first._guard.admit("bucket:invites", FAR)  # first's probe is on the wire
    # Meanwhile the probe's answer arrives, with headers that open the window.
    world.clock.meanwhile.append(
        lambda: first._guard.observe(world.discord.rate_limit, "bucket:invites", FAR)
    )
    assert lookup(second).status == 200
    assert 0 < sum(world.clock.slept) < 0.1  # one poll, then the window was open
    assert world.fleet.buckets["bucket:invites"].remaining == 3


@pytest.mark.parametrize("caller", ["lookup", "delete", "listing", "vanity", "rule lookup"])
def test_no_caller_waits_past_its_deadline_for_a_probe(world: World, caller: str) -> None:
    world.discord.add_invite("abc-123")
    routes: dict[str, tuple[str, Callable[[GuardedDiscord, Deadline], object]]] = {
        "lookup": ("bucket:invites", lambda r, d: lookup(r, deadline=d)),
        "delete": (
            "bucket:invites-delete",
            lambda r, d: r.delete_invite("abc-123", None, deadline=d),
        ),
        "listing": (
            "bucket:guild-invites:1000",
            lambda r, d: r.list_guild_invites("1000", deadline=d),
        ),
        "vanity": (
            "bucket:guild-vanity:1000",
            lambda r, d: r.guild_vanity_code("1000", deadline=d),
        ),
        "rule lookup": ("bucket:invites", lambda r, d: r.get_invite("abc-123", deadline=d)),
    }
    bucket, call = routes[caller]
    instance(world)._guard.admit(bucket, FAR)  # another instance's probe, still in flight
    deadline = world.deadline(1.5)
    with pytest.raises(DiscordRateLimited):
        call(instance(world), deadline)
    assert world.clock.now < deadline.at
    # It did wait for the probe, as long as it could and still leave the call its time.
    assert sum(world.clock.slept) >= 1.5 - CALL_RESERVE_SECONDS - PROBE_POLL_SECONDS
    assert world.discord.calls == []


# -- the budget ---------------------------------------------------------------------------


def test_the_budget_holds_public_lookups_only(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.clock.now -= world.clock.now % WINDOW_SECONDS
    road = instance(world, LOOKUP_BUDGET_PER_10_MINUTES=2)
    lookup(road)
    lookup(instance(world, LOOKUP_BUDGET_PER_10_MINUTES=2))
    with pytest.raises(BudgetExhausted) as spent:
        lookup(road)
    # Two per 10 minutes: one back every 300 s, not all at a window's end.
    assert spent.value.retry_after == pytest.approx(WINDOW_SECONDS / 2)
    assert road.get_invite("abc-123", deadline=FAR).status == 200  # a rule run's lookup
    world.clock.advance(WINDOW_SECONDS / 2)
    assert lookup(road).status == 200
    with pytest.raises(BudgetExhausted):
        lookup(road)


def test_a_lookup_refused_by_the_budget_holds_no_bucket_request(world: World) -> None:
    world.discord.add_invite("abc-123")
    road = instance(world, LOOKUP_BUDGET_PER_10_MINUTES=1)
    world.clock.now -= world.clock.now % WINDOW_SECONDS
    lookup(road)
    with pytest.raises(BudgetExhausted):
        lookup(road)
    assert world.fleet.buckets["bucket:invites"].probing is None


def test_a_call_that_cannot_be_made_spends_no_budget_rate_or_bucket(world: World) -> None:
    world.discord.add_invite("abc-123")
    world.clock.now -= world.clock.now % WINDOW_SECONDS
    road = instance(world, LOOKUP_BUDGET_PER_10_MINUTES=1)
    world.discord.token_unreadable = CredentialsUnavailable(detail="secret unreadable")
    for _ in range(3):
        with pytest.raises(CredentialsUnavailable):
            lookup(road)
    assert world.fleet.counters == {}
    assert world.fleet.buckets == {}
    world.discord.token_unreadable = None
    assert lookup(road).status == 200  # the budget is still whole


def test_an_instance_forgets_the_counters_of_seconds_gone_by(world: World) -> None:
    world.discord.add_invite("abc-123")
    road = instance(world)
    world.table.down = True  # so the instance's own memory keeps the rate
    for _ in range(5):
        lookup(road)
        world.clock.advance(1.0)
    memory = road._guard._memory
    assert [slot for (counter, slot) in memory.counters if counter == "rate"] == [  # type: ignore[attr-defined]
        int(world.clock.now) - 1
    ]
