"""The fleet's shared bucket records: what each instance may send, and in what order.

Every test runs twice, with the same contract: against a moto server (the fleet's
state in DynamoDB) and against the in-memory twin an instance falls back to while
the table is down. Each call of ``fleet()`` is another instance over the same state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.fleet_state.dynamodb import DynamoDBFleetState
from invite_proxy.adapters.fleet_state.memory import InstanceFleetState
from invite_proxy.domain.fleet_state import (
    PROBE,
    PROBE_POLL_SECONDS,
    SPENT,
    TURN_SKIP_SECONDS,
    Allowance,
    FleetState,
)
from invite_proxy.domain.rate_limits import BucketState

SCOPE = "bucket:invites"
Fleet = Callable[[], FleetState]


@pytest.fixture(params=["dynamodb", "memory"])
def fleet(request: pytest.FixtureRequest, dynamodb: Any, table_name: str) -> Fleet:
    if request.param == "dynamodb":
        return lambda: DynamoDBFleetState(dynamodb, table_name)
    shared = InstanceFleetState()
    return lambda: InstanceFleetState(shared=shared)


@pytest.fixture
def state(fleet: Fleet) -> FleetState:
    return fleet()


def window(limit: int, remaining: int, reset_at: float, name: float, now: float) -> BucketState:
    return BucketState(limit, remaining, reset_at, name, "b", now)


def test_an_unseen_bucket_lets_one_probe_through_and_holds_the_rest(state: FleetState) -> None:
    now = time.time()
    assert state.take_bucket(SCOPE, now, probe_seconds=5) == PROBE
    waiting = state.take_bucket(SCOPE, now, probe_seconds=5)
    assert (waiting.granted, waiting.awaiting_probe, waiting.ticket) == (False, True, 1)
    assert waiting.retry_at == pytest.approx(now + PROBE_POLL_SECONDS)  # look again soon


def test_the_probes_headers_open_the_window_for_everyone(state: FleetState) -> None:
    now = time.time()
    state.take_bucket(SCOPE, now, probe_seconds=5)
    state.record_bucket(SCOPE, window(3, 2, now + 1, 1000.0, now))
    assert [state.take_bucket(SCOPE, now, 5) for _ in range(2)] == [SPENT, SPENT]
    empty = state.take_bucket(SCOPE, now, 5)
    assert (empty.granted, empty.ticket) == (False, 1)
    assert empty.retry_at == pytest.approx(now + 1)
    # The next window: the caller in line probes it; a newcomer queues behind.
    assert state.take_bucket(SCOPE, now + 1.01, 5).ticket == 2
    assert state.take_bucket(SCOPE, now + 1.01, 5, empty.ticket) == PROBE


def test_answers_from_one_window_only_ever_lower_what_is_left(state: FleetState) -> None:
    now = time.time()
    state.take_bucket(SCOPE, now, 5)
    state.record_bucket(SCOPE, window(5, 1, now + 1.0, 1000.0, now))
    # An answer sent earlier in the same window, arriving late and slow: more left, and
    # a later reset by our clock. The window (Discord's Reset) says it is the same one.
    state.record_bucket(SCOPE, window(5, 3, now + 1.6, 1000.0, now))
    assert state.take_bucket(SCOPE, now, 5) == SPENT
    waiting = state.take_bucket(SCOPE, now, 5)
    assert not waiting.granted
    state.record_bucket(SCOPE, window(5, 4, now + 1.0, 999.0, now))  # an older window
    assert not state.take_bucket(SCOPE, now, 5, waiting.ticket).granted
    state.record_bucket(SCOPE, window(5, 4, now + 2.0, 1001.0, now))  # the next window
    assert state.take_bucket(SCOPE, now, 5, waiting.ticket) == SPENT


def test_a_probe_without_headers_frees_the_bucket_at_once(fleet: Fleet) -> None:
    state = fleet()
    now = time.time()
    assert state.take_bucket(SCOPE, now, 5) == PROBE
    fleet().end_probe(SCOPE, now)  # not its probe: no effect
    waiting = state.take_bucket(SCOPE, now + 0.01, 5)
    assert not waiting.granted
    state.end_probe(SCOPE, now)  # say, a reset connection
    assert state.take_bucket(SCOPE, now + 0.01, 5, waiting.ticket) == PROBE


# -- the line ------------------------------------------------------------------------------


def test_a_newcomer_never_passes_a_caller_in_line(fleet: Fleet) -> None:
    first, second, newcomer = fleet(), fleet(), fleet()
    now = time.time()
    first.take_bucket(SCOPE, now, 5)
    first.record_bucket(SCOPE, window(2, 0, now + 1.0, 1000.0, now))  # empty until now + 1
    one = first.take_bucket(SCOPE, now + 0.1, 5)
    two = second.take_bucket(SCOPE, now + 0.2, 5)
    assert (one.ticket, two.ticket) == (1, 2)
    at_reset = now + 1.01
    late = newcomer.take_bucket(SCOPE, at_reset, 5)  # first at the refill, but last in line
    assert (late.granted, late.ticket) == (False, 3)
    assert first.take_bucket(SCOPE, at_reset, 5, one.ticket) == PROBE
    assert second.take_bucket(SCOPE, at_reset, 5, two.ticket).awaiting_probe
    first.record_bucket(SCOPE, window(2, 1, at_reset + 1.0, 1001.0, at_reset + 0.02))
    # One request left in the window: the second's, however soon the newcomer asks.
    assert not newcomer.take_bucket(SCOPE, at_reset + 0.03, 5, late.ticket).granted
    assert second.take_bucket(SCOPE, at_reset + 0.04, 5, two.ticket) == SPENT
    after = newcomer.take_bucket(SCOPE, at_reset + 0.05, 5, late.ticket)
    assert after.retry_at == pytest.approx(at_reset + 1.0)  # the next window, its turn
    assert newcomer.take_bucket(SCOPE, at_reset + 1.01, 5, late.ticket) == PROBE


def test_a_turn_let_go_by_passes_to_the_next_in_line(fleet: Fleet) -> None:
    """A caller in line may give up (its deadline) or vanish (its instance stopped):
    those behind it wait a moment for it, then go on."""
    gone, patient = fleet(), fleet()
    now = time.time()
    gone.take_bucket(SCOPE, now, 5)
    gone.record_bucket(SCOPE, window(2, 0, now + 1.0, 1000.0, now))
    lost = gone.take_bucket(SCOPE, now + 0.1, 5)
    kept = patient.take_bucket(SCOPE, now + 0.2, 5)
    at_reset = now + 1.01
    assert not patient.take_bucket(SCOPE, at_reset, 5, kept.ticket).granted  # its turn, still
    skip = at_reset + TURN_SKIP_SECONDS + 0.01
    assert patient.take_bucket(SCOPE, skip, 5, kept.ticket) == PROBE
    # The one that let its turn go by, back after all: it joins the line again.
    back = gone.take_bucket(SCOPE, skip + 0.01, 5, lost.ticket)
    assert (back.granted, back.ticket, back.retry_at) == (False, None, skip + 0.01)


def test_callers_further_back_wake_later_not_all_at_the_refill(state: FleetState) -> None:
    now = time.time()
    state.take_bucket(SCOPE, now, 5)
    state.record_bucket(SCOPE, window(2, 0, now + 1.0, 1000.0, now))
    wakes = [state.take_bucket(SCOPE, now, 5).retry_at - (now + 1.0) for _ in range(5)]
    poll = PROBE_POLL_SECONDS
    assert wakes == pytest.approx([0.0, 0.0, poll, poll, 2 * poll])


# -- allowances: calls that refill continuously ------------------------------------------


def test_an_allowance_gives_its_burst_then_one_call_every_interval(fleet: Fleet) -> None:
    allowance = Allowance.per(3, 30.0)  # three held, one back every 10 s
    now = time.time()
    assert [fleet().take_allowance("share", now, allowance) for _ in range(3)] == [0.0] * 3
    assert fleet().take_allowance("share", now, allowance) == pytest.approx(10.0)
    # No cliff: one call back after 10 s, not all three at a window's end.
    assert fleet().take_allowance("share", now + 10.0, allowance) == 0.0
    assert fleet().take_allowance("share", now + 10.0, allowance) == pytest.approx(10.0)
    assert fleet().take_allowance("share", now + 35.0, allowance) == 0.0  # refilled in between


def test_allowances_are_kept_apart_by_name(state: FleetState) -> None:
    allowance = Allowance.per(1, 60.0)
    now = time.time()
    assert state.take_allowance("caller:192.0.2.1", now, allowance) == 0.0
    assert state.take_allowance("caller:192.0.2.1", now, allowance) > 0
    assert state.take_allowance("caller:192.0.2.2", now, allowance) == 0.0


def test_an_allowance_never_refills_past_its_burst(state: FleetState) -> None:
    allowance = Allowance.per(2, 20.0)
    now = time.time()
    state.take_allowance("idle", now, allowance)
    later = now + 3600  # an hour idle holds two, not 360
    assert [state.take_allowance("idle", later, allowance) for _ in range(3)][:2] == [0.0, 0.0]
    assert state.take_allowance("idle", later, allowance) > 0


def test_a_call_given_back_is_taken_again(state: FleetState) -> None:
    allowance = Allowance.per(1, 60.0)
    now = time.time()
    assert state.take_allowance("back", now, allowance) == 0.0
    assert state.take_allowance("back", now, allowance) > 0
    state.give_back_allowance("back", allowance)
    assert state.take_allowance("back", now, allowance) == 0.0


def test_a_take_from_the_table_says_what_it_left_so_answers_that_say_no_less_go_unwritten(
    dynamodb: Any, table_name: str
) -> None:
    """The record of an answer the table's bucket already says is refused by its condition:
    the take's view of the bucket lets the guard skip that write."""
    state = DynamoDBFleetState(dynamodb, table_name)
    bucket, now = "bucket:said", time.time()
    state.take_bucket(bucket, now, probe_seconds=5)
    state.record_bucket(bucket, window(5, 4, now + 1, 2000.0, now))
    take = state.take_bucket(bucket, now, 5)
    assert take == SPENT
    assert (take.window, take.remaining) == (2000.0, 3)
    assert take.knew(window(5, 3, now + 1, 2000.0, now))  # Discord: as much left, or more
    assert take.knew(window(5, 4, now + 1, 2000.0, now))
    assert not take.knew(window(5, 2, now + 1, 2000.0, now))  # less: written
    assert not take.knew(window(5, 4, now + 2, 2001.0, now))  # a newer window: written
    assert not SPENT.knew(window(5, 4, now + 1, 2000.0, now))  # no view: always written


def test_blocks_long_over_are_tidied_from_their_one_item(dynamodb: Any, table_name: str) -> None:
    """The blocks' item has no TTL: a new block takes away those over for a while."""
    state = DynamoDBFleetState(dynamodb, table_name)
    now = time.time()
    state.block("bucket:old", now - 3600, "429")
    state.block("bucket:new", now + 5, "429")
    item = dynamodb.get_item(TableName=table_name, Key=keys.blocks_key())["Item"]
    assert "until:bucket:old" not in item
    assert "reason:bucket:old" not in item
    assert "until:bucket:new" in item
    assert [b.target for b in state.active_blocks(now) if b.target.startswith("bucket:")] == [
        "bucket:new"
    ]
    dynamodb.delete_item(TableName=table_name, Key=keys.blocks_key())
