"""The fleet's shared bucket records against a moto server: what each instance may send."""

from __future__ import annotations

import time
from typing import Any

import pytest

from invite_proxy.dynamodb.fleet_state import DynamoDBFleetState
from invite_proxy.rate_limits import BucketState
from invite_proxy.upstream_guard import PROBE, PROBE_POLL_SECONDS, SPENT

SCOPE = "bucket:invites"


@pytest.fixture
def state(dynamodb: Any, table_name: str) -> DynamoDBFleetState:
    return DynamoDBFleetState(dynamodb, table_name)


def test_an_unseen_bucket_lets_one_probe_through_and_holds_the_rest(
    state: DynamoDBFleetState,
) -> None:
    now = time.time()
    assert state.take_bucket(SCOPE, now, probe_seconds=5) == PROBE
    waiting = state.take_bucket(SCOPE, now, probe_seconds=5)
    assert (waiting.granted, waiting.awaiting_probe) == (False, True)
    assert waiting.retry_at == pytest.approx(now + PROBE_POLL_SECONDS)  # look again soon


def test_the_probes_headers_open_the_window_for_everyone(state: DynamoDBFleetState) -> None:
    now = time.time()
    state.take_bucket(SCOPE, now, probe_seconds=5)
    state.record_bucket(
        SCOPE,
        BucketState(limit=3, remaining=2, reset_at=now + 1, window=1000.0, discord_bucket="b"),
    )
    assert [state.take_bucket(SCOPE, now, 5) for _ in range(2)] == [SPENT, SPENT]
    empty = state.take_bucket(SCOPE, now, 5)
    assert not empty.granted
    assert empty.retry_at == pytest.approx(now + 1)
    assert state.take_bucket(SCOPE, now + 1.01, 5) == PROBE  # the next window


def test_answers_from_one_window_only_ever_lower_what_is_left(state: DynamoDBFleetState) -> None:
    now = time.time()
    state.take_bucket(SCOPE, now, 5)
    state.record_bucket(SCOPE, BucketState(5, 1, now + 1.0, 1000.0, "b"))
    # An answer sent earlier in the same window, arriving late and slow: more left, and
    # a later reset by our clock. The window (Discord's Reset) says it is the same one.
    state.record_bucket(SCOPE, BucketState(5, 3, now + 1.6, 1000.0, "b"))
    assert state.take_bucket(SCOPE, now, 5) == SPENT
    assert not state.take_bucket(SCOPE, now, 5).granted
    state.record_bucket(SCOPE, BucketState(5, 4, now + 1.0, 999.0, "b"))  # an older window
    assert not state.take_bucket(SCOPE, now, 5).granted
    state.record_bucket(SCOPE, BucketState(5, 4, now + 2.0, 1001.0, "b"))  # the next window
    assert state.take_bucket(SCOPE, now, 5) == SPENT


def test_a_probe_without_headers_frees_the_bucket_at_once(
    state: DynamoDBFleetState, dynamodb: Any, table_name: str
) -> None:
    now = time.time()
    assert state.take_bucket(SCOPE, now, 5) == PROBE
    DynamoDBFleetState(dynamodb, table_name).end_probe(SCOPE, now)  # not its probe: no effect
    assert not state.take_bucket(SCOPE, now + 0.01, 5).granted
    state.end_probe(SCOPE, now)  # say, a reset connection
    assert state.take_bucket(SCOPE, now + 0.01, 5) == PROBE
