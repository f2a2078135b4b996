"""Each caller's share of the lookup budget, on the fake clock: no caller can spend it all.

A caller is the address that asked (domain/callers.py). Its misses take from its own
share first; hits are free. Shares and the budget refill continuously.
"""

from __future__ import annotations

import pytest

from invite_proxy.domain.callers import caller_key
from invite_proxy.domain.errors import BudgetExhausted, CallerShareExhausted
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.services.lookup import CacheStatus, InviteLookupService
from tests.unit.conftest import World

FLOODER, NEIGHBOUR = "198.51.100.7", "203.0.113.9"
SETTINGS = {"LOOKUP_BUDGET_PER_10_MINUTES": 100, "LOOKUP_SHARE_PER_CALLER": 5}


def query(code: str) -> InviteQuery:
    return InviteQuery.parse(code, None)


def flood(lookups: InviteLookupService, caller: str, count: int, prefix: str = "rand") -> int:
    """Misses of random codes (unknown invites) from one caller; how many it was refused."""
    refused = 0
    for n in range(count):
        try:
            lookups.lookup(query(f"{prefix}-{n:04}"), caller=caller)
        except CallerShareExhausted:
            refused += 1
        except Exception:  # noqa: S112 (an unknown invite: the answer it deserves)
            continue
    return refused


def test_a_caller_past_its_share_is_refused_and_others_are_served(world: World) -> None:
    world.discord.add_invite("real-1")
    lookups = world.lookups(**SETTINGS)
    assert flood(lookups, FLOODER, 40) == 35  # five of its misses went to Discord
    assert len(world.discord.calls) == 5
    assert lookups.lookup(query("real-1"), caller=NEIGHBOUR).found  # another caller: served


def test_the_refusal_says_when_the_share_gives_one_back(world: World) -> None:
    lookups = world.lookups(**SETTINGS)
    flood(lookups, FLOODER, 5)
    with pytest.raises(CallerShareExhausted) as refused:
        lookups.lookup(query("one-more"), caller=FLOODER)
    assert refused.value.retry_after == pytest.approx(600 / 5)  # one back every 120 s
    world.clock.advance(120)
    assert flood(lookups, FLOODER, 2, prefix="later") == 1  # one back, not five


def test_hits_stay_free_for_a_caller_past_its_share(world: World) -> None:
    world.discord.add_invite("real-2")
    lookups = world.lookups(**SETTINGS)
    lookups.lookup(query("real-2"), caller=NEIGHBOUR)
    flood(lookups, FLOODER, 10)
    assert lookups.lookup(query("real-2"), caller=FLOODER).cache_status is CacheStatus.HIT


def test_a_refused_caller_spends_nothing_of_the_fleets_budget(world: World) -> None:
    world.discord.add_invite("real-3")
    lookups = world.lookups(LOOKUP_BUDGET_PER_10_MINUTES=6, LOOKUP_SHARE_PER_CALLER=5)
    flood(lookups, FLOODER, 50)
    assert lookups.lookup(query("real-3"), caller=NEIGHBOUR).found  # the sixth lookup
    with pytest.raises(BudgetExhausted):
        lookups.lookup(query("rand-other"), caller="192.0.2.1")


def test_a_refused_callers_miss_does_not_hold_the_key_for_others(world: World) -> None:
    """The fetch lease is let go at once: the refusal is about the caller, not the invite."""
    world.discord.add_invite("real-4")
    lookups = world.lookups(**SETTINGS)
    flood(lookups, FLOODER, 5)
    with pytest.raises(CallerShareExhausted):
        lookups.lookup(query("real-4"), caller=FLOODER)
    assert lookups.lookup(query("real-4"), caller=NEIGHBOUR).found


def test_one_ipv6_network_is_one_caller(world: World) -> None:
    lookups = world.lookups(**SETTINGS)
    for n in range(5):  # a client that picks a new address in its /64 for each request
        lookups.lookup(query(f"v6-{n}"), caller=f"2001:db8:1:2::{n + 1:x}")
    with pytest.raises(CallerShareExhausted):
        lookups.lookup(query("v6-next"), caller="2001:db8:1:2:ffff::1")
    assert lookups.lookup(query("v6-other"), caller="2001:db8:1:3::1").found is False  # served


def test_with_the_table_down_each_instance_still_keeps_the_share(world: World) -> None:
    lookups = world.lookups(**SETTINGS)
    world.table.down = True
    assert flood(lookups, FLOODER, 10) == 5


def test_without_shares_a_caller_is_held_only_by_the_budget(world: World) -> None:
    lookups = world.lookups(LOOKUP_BUDGET_PER_10_MINUTES=100, LOOKUP_SHARE_PER_CALLER=0)
    assert flood(lookups, FLOODER, 20) == 0


@pytest.mark.parametrize(
    ("address", "caller"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("192.168.0.1/32", "192.168.0.1"),  # as SAM's sample events write it
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_the_caller_an_address_belongs_to(address: str | None, caller: str | None) -> None:
    assert caller_key(address) == caller


def test_a_miss_the_fleet_refuses_gives_the_callers_share_back(world: World) -> None:
    """A bystander refused for the fleet's spent budget keeps its share for later."""
    lookups = world.lookups(LOOKUP_BUDGET_PER_10_MINUTES=1, LOOKUP_SHARE_PER_CALLER=3)
    lookups.lookup(query("spent-by-another"), caller="192.0.2.50")
    for n in range(5):
        with pytest.raises(BudgetExhausted):
            lookups.lookup(query(f"refused-{n}"), caller=NEIGHBOUR)
    world.clock.advance(600)  # one lookup back in the budget
    assert lookups.lookup(query("at-last"), caller=NEIGHBOUR).found is False  # served


def test_the_caller_is_worked_out_only_for_a_miss(world: World) -> None:
    world.discord.add_invite("real-5")
    lookups = world.lookups(**SETTINGS)
    asked: list[str] = []

    def who() -> str:
        asked.append("asked")
        return NEIGHBOUR

    lookups.lookup(query("real-5"), caller=who)
    lookups.lookup(query("real-5"), caller=who)  # a hit: nobody needs to know who
    assert asked == ["asked"]
