"""A lookup's claim against a moto server: its lease, the code's unknown marker and the
call's admission (blocks, the second's rate, the caller's share, the budget) in one
transaction, all or none; and the write that settles the lease in the same call."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
from invite_proxy.adapters.dynamodb.calls import TableCalls
from invite_proxy.adapters.dynamodb.lease_store import DynamoDBLeases
from invite_proxy.adapters.fleet_state.dynamodb import DynamoDBFleetState
from invite_proxy.domain.cache_policy import CachePolicy, EntryKind, invite_entry, unknown_entry
from invite_proxy.domain.errors import BudgetExhausted, CallerShareExhausted, TableUnavailable
from invite_proxy.domain.fleet_state import Allowance
from invite_proxy.domain.guard import Admission
from invite_proxy.domain.leases import AlreadyKnown, HeldElsewhere, Lease, Withheld

POLICY = CachePolicy(
    fresh_seconds=60, max_age_seconds=3600, negative_seconds=30, stale_if_error_seconds=60
)
SHARE = Allowance.per(2, 600)  # one back every 300 s
BUDGET = Allowance.per(100, 600)


class Counted(TableCalls):
    """TableCalls that counts what it sends, by what."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: Counter[str] = Counter()

    def _send[R](self, what: str, send: Callable[[], R], deadline: Any, essential: bool) -> R:
        self.sent[what] += 1
        return super()._send(what, send, deadline, essential)


def admission(caller: str = "203.0.113.7", limit: int = 40) -> Admission:
    share = f"caller#{caller}"
    blocks = ("cloudflare", "global", "token", "bucket:invites")
    return Admission(blocks, limit, ((share, SHARE), ("lookup-budget", BUDGET)), share)


@pytest.fixture
def calls() -> Counted:
    return Counted()


@pytest.fixture
def leases(dynamodb: Any, table_name: str, calls: Counted) -> DynamoDBLeases:
    return DynamoDBLeases(dynamodb, table_name, calls)


def full_at(dynamodb: Any, table_name: str, name: str) -> float | None:
    item = dynamodb.get_item(TableName=table_name, Key=keys.allowance_key(name)).get("Item")
    return float(item["full_at"]["N"]) if item else None


def rate(dynamodb: Any, table_name: str, now: float) -> int:
    key = keys.key(keys.RATE, keys.second_sort_key(math.floor(now)))
    item = dynamodb.get_item(TableName=table_name, Key=key, ConsistentRead=True).get("Item")
    return int(item["n"]["N"]) if item else 0


def test_a_claim_takes_the_lease_and_the_admission_in_one_call(
    leases: DynamoDBLeases, calls: Counted, dynamodb: Any, table_name: str
) -> None:
    now = time.time()
    claim = leases.claim("cl-1", "v", now, 10, admission=admission("198.51.100.1"))
    assert isinstance(claim, Lease)
    assert claim.admitted is not None
    assert claim.admitted.second == math.floor(now)
    assert full_at(dynamodb, table_name, "caller#198.51.100.1") == pytest.approx(now + 300)
    assert full_at(dynamodb, table_name, "lookup-budget") is not None
    assert rate(dynamodb, table_name, now) >= 1
    # Never taken: the update that serves that and a part-spent allowance alike, one call;
    # and the next claim, one call.
    assert sum(calls.sent.values()) == 1
    calls.sent.clear()
    other = leases.claim("cl-2", "v", now, 10, admission=admission("198.51.100.1"))
    assert isinstance(other, Lease)
    assert other.admitted is not None
    assert calls.sent == Counter({"claiming 'cl-2'": 1})


def test_a_spent_share_is_withheld_and_nothing_is_taken(
    leases: DynamoDBLeases, calls: Counted, dynamodb: Any, table_name: str
) -> None:
    now = time.time()
    for code in ("cl-3", "cl-4"):  # the share's two lookups
        assert isinstance(leases.claim(code, "v", now, 10, admission=admission()), Lease)
    budget_before = full_at(dynamodb, table_name, "lookup-budget")
    calls.sent.clear()
    claim = leases.claim("cl-5", "v", now, 10, admission=admission())
    assert isinstance(claim, Withheld)
    assert claim.name == "caller#203.0.113.7"
    assert claim.wait == pytest.approx(300, abs=1)
    assert calls.sent == Counter({"claiming 'cl-5'": 1})  # a refused miss: its read, and this
    assert full_at(dynamodb, table_name, "lookup-budget") == budget_before
    lease = dynamodb.get_item(TableName=table_name, Key=keys.lease_key("cl-5", "v"))
    assert "Item" not in lease  # no lease to settle, no share to give back
    error = admission().withheld(claim.name, claim.wait)
    assert isinstance(error, CallerShareExhausted)
    assert error.retry_after == claim.wait


def test_a_spent_budget_is_withheld_whoever_asks_on_whichever_instance(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases, calls: Counted
) -> None:
    now = time.time()
    tiny = Allowance.per(1, 600)
    spent = Admission(("global",), 40, (("lookup-budget#tiny", tiny),))
    assert isinstance(leases.claim("cl-6", "v", now, 10, admission=spent), Lease)
    other = DynamoDBLeases(dynamodb, table_name, calls)  # another instance: not seen there
    calls.sent.clear()
    claim = other.claim("cl-7", "v", now, 10, admission=spent)
    assert isinstance(claim, Withheld)
    assert claim.name == "lookup-budget#tiny"
    assert claim.wait == pytest.approx(600, abs=1)
    assert sum(calls.sent.values()) == 1
    assert isinstance(spent.withheld(claim.name, claim.wait), BudgetExhausted)
    # Refused there now: the next claim takes nothing, and reads only what comes first
    # (a fetch of the code under way, or the code known unknown), with one read.
    calls.sent.clear()
    again = other.claim("cl-8", "v", now, 10, admission=spent)
    assert isinstance(again, Withheld)
    assert again.wait == pytest.approx(600, abs=1)
    assert calls.sent == Counter({"reading the claim on 'cl-8'": 1})


def test_a_withheld_caller_still_waits_on_a_fetch_under_way_and_hears_a_known_code(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases
) -> None:
    """What a claim answers before its admission, it answers for a spent caller too."""
    now = time.time()
    tiny = Allowance.per(1, 600)
    spent = Admission(("global",), 40, (("caller#spent", tiny),), "caller#spent")
    assert isinstance(leases.claim("cl-15", "v", now, 10, admission=spent), Lease)
    assert isinstance(leases.claim("cl-16", "v", now, 10, admission=spent), Withheld)
    theirs = DynamoDBLeases(dynamodb, table_name).claim("cl-17", "v", now, 10)
    assert isinstance(theirs, Lease)
    assert leases.claim("cl-17", "v", now, 10, admission=spent) == HeldElsewhere(theirs.until, None)
    cache = DynamoDBInviteCache(dynamodb, table_name)
    cache.put(unknown_entry("cl-18", "counts=0#event=-", "{}", now, POLICY), fetch_started=now)
    known = leases.claim("cl-18", "counts=1#event=-", now, 10, admission=spent)
    assert isinstance(known, AlreadyKnown)
    assert known.entry.variant == "counts=1#event=-"


def test_a_held_lease_is_waited_on_and_spends_nothing(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases
) -> None:
    now = time.time()
    theirs = DynamoDBLeases(dynamodb, table_name)
    held = theirs.claim("cl-8", "v", now, 10, admission=admission("198.51.100.8"))
    assert isinstance(held, Lease)
    share = full_at(dynamodb, table_name, "caller#198.51.100.9")
    claim = leases.claim("cl-8", "v", now, 10, admission=admission("198.51.100.9"))
    assert claim == HeldElsewhere(until=held.until, failed=None)
    assert full_at(dynamodb, table_name, "caller#198.51.100.9") == share is None


def test_a_fresh_unknown_marker_answers_every_variant_without_a_lease(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases, calls: Counted
) -> None:
    now = time.time()
    cache = DynamoDBInviteCache(dynamodb, table_name)
    cache.put(unknown_entry("gone", "counts=0#event=-", "{}", now, POLICY), fetch_started=now)
    assert cache.get("gone", "counts=1#event=123", now) is None  # the variant's own read
    calls.sent.clear()
    claim = leases.claim("gone", "counts=1#event=123", now, 10, admission=admission())
    assert isinstance(claim, AlreadyKnown)
    assert (claim.entry.kind, claim.entry.variant) == (EntryKind.UNKNOWN, "counts=1#event=123")
    assert sum(calls.sent.values()) == 1
    assert full_at(dynamodb, table_name, "caller#203.0.113.7") is None  # nothing spent
    # Past its freshness the marker answers nothing: the claim takes the lease.
    later = leases.claim("gone", "counts=1#event=123", claim.entry.fresh_until + 0.01, 10)
    assert isinstance(later, Lease)
    cache.evict("gone", revoked_at=now)
    assert isinstance(leases.claim("gone", "counts=0#event=9", now, 10), Lease)


def test_a_block_in_force_leaves_the_admission_to_the_guard(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases, calls: Counted
) -> None:
    now = time.time()
    DynamoDBFleetState(dynamodb, table_name).block("bucket:invites", now + 5, "429")
    try:
        calls.sent.clear()
        claim = leases.claim("cl-9", "v", now, 10, admission=admission("198.51.100.10"))
        assert isinstance(claim, Lease)
        assert claim.admitted is None
        assert sum(calls.sent.values()) == 2
        assert full_at(dynamodb, table_name, "caller#198.51.100.10") is None  # nothing spent
    finally:
        dynamodb.delete_item(TableName=table_name, Key=keys.blocks_key())


def test_a_spent_second_leaves_the_admission_to_the_guard(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases
) -> None:
    now = time.time()
    assert DynamoDBFleetState(dynamodb, table_name).take_second(now, 1)
    claim = leases.claim("cl-10", "v", now, 10, admission=admission("198.51.100.12", limit=1))
    assert isinstance(claim, Lease)
    assert claim.admitted is None
    assert full_at(dynamodb, table_name, "caller#198.51.100.12") is None


def test_a_claim_conflicting_with_another_transaction_tries_again(
    dynamodb: Any, table_name: str, calls: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two claims at once on the budget's item: DynamoDB cancels one, which tries again."""
    send = dynamodb.transact_write_items
    conflicts = [1]

    def conflicting(**kwargs: Any) -> Any:
        if conflicts:
            conflicts.pop()
            reasons = [{"Code": "None"}] * (len(kwargs["TransactItems"]) - 1)
            error = {"Code": "TransactionCanceledException", "Message": "conflict"}
            response: Any = {
                "Error": error,
                "CancellationReasons": [*reasons, {"Code": "TransactionConflict"}],
            }
            raise ClientError(response, "TransactWriteItems")
        return send(**kwargs)

    leases = DynamoDBLeases(dynamodb, table_name, calls)
    monkeypatch.setattr(dynamodb, "transact_write_items", conflicting)
    now = time.time()
    claim = leases.claim("cl-11", "v", now, 10, admission=admission("198.51.100.11"))
    assert isinstance(claim, Lease)
    assert claim.admitted is not None
    assert not conflicts


def test_a_write_settles_its_lease_through_the_entrys_freshness_in_one_call(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases, calls: Counted
) -> None:
    now = time.time()
    cache = DynamoDBInviteCache(dynamodb, table_name, calls)
    lease = leases.claim("cl-12", "v", now, 10)
    assert isinstance(lease, Lease)
    entry = invite_entry("cl-12", "v", "{}", None, now, POLICY)
    calls.sent.clear()
    assert cache.put(entry, fetch_started=now, lease=lease)
    assert sum(calls.sent.values()) == 1
    assert leases.claim("cl-12", "v", now + 11, 10) == HeldElsewhere(entry.fresh_until, None)


def test_a_write_whose_lease_ran_out_is_still_written(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases
) -> None:
    now = time.time()
    cache = DynamoDBInviteCache(dynamodb, table_name)
    lease = leases.claim("cl-13", "v", now, 1)
    assert isinstance(lease, Lease)
    theirs = DynamoDBLeases(dynamodb, table_name).claim("cl-13", "v", now + 2, 10)
    assert isinstance(theirs, Lease)
    entry = invite_entry("cl-13", "v", "{}", None, now, POLICY)
    assert cache.put(entry, fetch_started=now, lease=lease)
    assert cache.get("cl-13", "v", now) == entry
    assert leases.claim("cl-13", "v", now + 3, 10) == HeldElsewhere(theirs.until, None)


def test_a_write_refused_by_a_revocation_leaves_the_lease_to_its_holder(
    dynamodb: Any, table_name: str, leases: DynamoDBLeases
) -> None:
    now = time.time()
    cache = DynamoDBInviteCache(dynamodb, table_name)
    lease = leases.claim("cl-14", "v", now, 10)
    assert isinstance(lease, Lease)
    cache.evict("cl-14", revoked_at=now + 0.5)
    entry = invite_entry("cl-14", "v", "{}", None, now, POLICY)
    assert not cache.put(entry, fetch_started=now, lease=lease)
    assert cache.get("cl-14", "v", now) is None


def test_each_invocation_reports_what_dynamodb_says_its_calls_consumed(
    moto_endpoint: str, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployed stack's own measure of docs/cost.md's units: every call asks DynamoDB
    what it consumed, and the sums become the invocation's metrics."""
    from invite_proxy import observability as obs
    from invite_proxy.adapters.dynamodb.calls import dynamodb_client

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_endpoint)
    obs.metrics.clear_metrics()
    client = dynamodb_client(2.0)
    cache = DynamoDBInviteCache(client, table_name)
    now = time.time()
    cache.put(invite_entry("cu-1", "v", "{}", None, now, POLICY))  # one PutItem
    cache.get("cu-1", "v", now)  # one GetItem
    reported = obs.metrics.metric_set
    # moto answers with its constants (1 for a write, 0.5 for a read); DynamoDB with the
    # units it bills: either way, what the table said, summed per kind.
    assert sum(reported["TableWriteUnits"]["Value"]) > 0
    assert sum(reported["TableReadUnits"]["Value"]) > 0
    obs.metrics.clear_metrics()


def test_an_allowance_whole_again_after_it_was_taken_costs_one_more_try_once(
    leases: DynamoDBLeases, calls: Counted, dynamodb: Any, table_name: str
) -> None:
    """The one state the first update cannot take from: whole again (DynamoDB has no
    max()). The table's answer says so, the next try takes it, and the instance knows."""
    now = time.time()
    name = "caller#198.51.100.20"
    dynamodb.put_item(  # taken long ago by someone, whole again since
        TableName=table_name,
        Item=keys.allowance_key(name) | {"full_at": {"N": repr(now - 3600)}},
    )
    claim = leases.claim("cl-19", "v", now, 10, admission=admission("198.51.100.20"))
    assert isinstance(claim, Lease)
    assert claim.admitted is not None
    assert calls.sent == Counter({"claiming 'cl-19'": 2})
    assert full_at(dynamodb, table_name, name) == pytest.approx(now + 300)


def conflicting_once(send: Callable[..., Any], times: int = 1) -> Callable[..., Any]:
    """A client method that first meets another transaction on its item, ``times`` times."""
    left = [times]

    def call(**kwargs: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            error: Any = {"Code": "TransactionConflictException", "Message": "in a transaction"}
            raise ClientError({"Error": error}, "PutItem")
        return send(**kwargs)

    return call


def test_a_single_write_that_meets_a_claims_transaction_tries_again(
    dynamodb: Any, table_name: str, calls: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB refuses a PutItem or UpdateItem on an item a transaction is writing, and
    botocore does not try it again: a waiter's poll of a hot code's lease, or the guard's
    take of the second, is tried again, and the table is not taken for failing."""
    leases = DynamoDBLeases(dynamodb, table_name, calls)
    monkeypatch.setattr(dynamodb, "put_item", conflicting_once(dynamodb.put_item))
    assert isinstance(leases.acquire("cl-20", "v", time.time(), 10), Lease)
    assert calls.sent == Counter({"taking the lease on 'cl-20'": 2})


def test_an_item_busy_all_along_fails_the_call_not_the_table(
    dynamodb: Any, table_name: str, calls: Counted, monkeypatch: pytest.MonkeyPatch
) -> None:
    leases = DynamoDBLeases(dynamodb, table_name, calls)
    monkeypatch.setattr(dynamodb, "put_item", conflicting_once(dynamodb.put_item, times=3))
    with pytest.raises(TableUnavailable):
        leases.acquire("cl-21", "v", time.time(), 10)
    # The breaker stays closed: the next call goes to the table at once.
    assert isinstance(leases.acquire("cl-21", "v", time.time(), 10), Lease)
