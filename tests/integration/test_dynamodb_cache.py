"""The DynamoDB cache adapter against a moto server, with the table from template.yaml."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.config import Config

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
from invite_proxy.adapters.dynamodb.calls import TableCalls
from invite_proxy.adapters.dynamodb.lease_store import DynamoDBLeases
from invite_proxy.domain.cache_policy import CachePolicy, EntryKind, invite_entry, unknown_entry
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import TableSkipped, TableUnavailable
from invite_proxy.domain.leases import AlreadyKnown, HeldElsewhere, Lease
from invite_proxy_local.template import Template
from tests.conftest import closed_port
from tests.stand_ins import Relay

POLICY = CachePolicy(
    fresh_seconds=60, max_age_seconds=3600, negative_seconds=30, stale_if_error_seconds=60
)


@pytest.fixture
def cache(dynamodb: Any, table_name: str) -> DynamoDBInviteCache:
    return DynamoDBInviteCache(dynamodb, table_name)


def test_table_matches_template_with_ttl_enabled(
    dynamodb: Any, table_name: str, template: Template
) -> None:
    table = dynamodb.describe_table(TableName=table_name)["Table"]
    props = template.table()
    assert table["KeySchema"] == props["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


def test_round_trip_keeps_the_body_verbatim(cache: DynamoDBInviteCache) -> None:
    now = time.time()
    body = '{"code": "abc", "n": 1.50, "big": 12345678901234567890, "ü": "✓"}'
    entry = invite_entry("abc", "counts=0#event=-", body, None, now, POLICY)
    cache.put(entry)
    assert cache.get("abc", "counts=0#event=-", now) == entry
    assert cache.get("abc", "counts=1#event=-", now) is None  # other variant: separate item


def test_item_past_its_ttl_reads_as_absent(
    cache: DynamoDBInviteCache, dynamodb: Any, table_name: str
) -> None:
    now = time.time()
    entry = invite_entry("old", "v", "{}", None, now, POLICY)
    cache.put(entry)
    # moto (like DynamoDB, for up to days) still returns the item after its TTL.
    raw = dynamodb.get_item(TableName=table_name, Key=keys.variant_key("old", "v"))
    assert "Item" in raw
    assert cache.get("old", "v", entry.expires_at + 1) is None
    assert cache.get("old", "v", entry.expires_at - 1) == entry


def test_negative_entry_round_trip(cache: DynamoDBInviteCache) -> None:
    now = time.time()
    entry = unknown_entry("dead", "v", '{"code": 10006}', now, POLICY)
    cache.put(entry)
    assert cache.get("dead", "v", now) == entry


@pytest.mark.parametrize("fetch_started", [None, 0.0])
def test_a_code_found_unknown_is_unknown_in_every_variant_until_evicted(
    cache: DynamoDBInviteCache, dynamodb: Any, table_name: str, fetch_started: float | None
) -> None:
    """The variant's read finds only the variant; the code's marker answers every other
    one through the lookup's claim (tests/integration/test_claims.py)."""
    now = time.time()
    leases = DynamoDBLeases(dynamodb, table_name)
    cache.put(
        unknown_entry("gone", "counts=0#event=-", "{}", now, POLICY), fetch_started=fetch_started
    )
    assert cache.get("gone", "counts=1#event=123", now) is None
    other = leases.claim("gone", "counts=1#event=123", now, 10)
    assert isinstance(other, AlreadyKnown)
    assert (other.entry.kind, other.entry.variant) == (EntryKind.UNKNOWN, "counts=1#event=123")
    cache.evict("gone", revoked_at=now)
    assert isinstance(leases.claim("gone", "counts=1#event=123", now, 10), Lease)


def test_a_known_codes_other_variants_are_not_answered_from_it(cache: DynamoDBInviteCache) -> None:
    now = time.time()
    cache.put(invite_entry("live", "counts=0#event=-", "{}", None, now, POLICY))
    assert cache.get("live", "counts=1#event=-", now) is None


def test_foreign_item_shape_is_a_miss(
    cache: DynamoDBInviteCache, dynamodb: Any, table_name: str
) -> None:
    dynamodb.put_item(
        TableName=table_name,
        Item=keys.variant_key("x1", "v") | {"kind": {"S": "weird"}},
    )
    assert cache.get("x1", "v", time.time()) is None


def test_unreachable_dynamodb_raises_cache_unavailable_quickly() -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{closed_port()}",
        config=Config(connect_timeout=0.5, read_timeout=0.5, retries={"max_attempts": 1}),
    )
    cache = DynamoDBInviteCache(client, "invites")
    with pytest.raises(TableUnavailable):
        cache.get("abc", "v", time.time())
    with pytest.raises(TableUnavailable):
        cache.put(invite_entry("abc", "v", "{}", None, time.time(), POLICY))


def test_missing_table_raises_cache_unavailable(dynamodb: Any) -> None:
    with pytest.raises(TableUnavailable):
        DynamoDBInviteCache(dynamodb, "no-such-table").get("abc", "v", time.time())


def test_a_revocation_stops_writes_from_lookups_that_began_before_it(
    dynamodb: Any, table_name: str
) -> None:
    cache = DynamoDBInviteCache(dynamodb, table_name)
    now = time.time()
    entry = invite_entry("raced", "counts=0#event=-", "{}", None, now, POLICY)
    assert cache.put(entry, fetch_started=now - 5)  # nothing revoked yet
    assert cache.evict("raced", revoked_at=now) == ["{}"]
    assert cache.get("raced", "counts=0#event=-", now) is None
    assert not cache.put(entry, fetch_started=now - 1)  # began before the revocation
    assert cache.get("raced", "counts=0#event=-", now) is None
    assert cache.put(entry, fetch_started=now + 1)  # began after it
    assert cache.get("raced", "counts=0#event=-", now) == entry


# -- fetch leases ----------------------------------------------------------------------------


def test_a_lease_is_held_by_one_instance_until_it_runs_out(dynamodb: Any, table_name: str) -> None:
    mine, theirs = DynamoDBLeases(dynamodb, table_name), DynamoDBLeases(dynamodb, table_name)
    now = time.time()
    lease = mine.acquire("ls-1", "v", now, 10)
    assert isinstance(lease, Lease)
    assert theirs.acquire("ls-1", "v", now, 10) == HeldElsewhere(until=lease.until, failed=None)
    assert isinstance(theirs.acquire("ls-1", "other-variant", now, 10), Lease)
    assert isinstance(theirs.acquire("ls-1", "v", lease.until + 0.01, 10), Lease)  # ran out


def test_a_settled_lease_says_until_when_and_why(dynamodb: Any, table_name: str) -> None:
    mine, theirs = DynamoDBLeases(dynamodb, table_name), DynamoDBLeases(dynamodb, table_name)
    now = time.time()
    lease = mine.acquire("ls-2", "v", now, 10)
    assert isinstance(lease, Lease)
    mine.finish(lease, now + 2, failed="upstream_error")
    assert theirs.acquire("ls-2", "v", now + 1, 10) == HeldElsewhere(now + 2, "upstream_error")
    taken = theirs.acquire("ls-2", "v", now + 3, 10)
    assert isinstance(taken, Lease)
    mine.finish(lease, now + 100)  # no longer its lease: nothing changes
    assert mine.acquire("ls-2", "v", now + 4, 10) == HeldElsewhere(taken.until, None)


def test_shortening_a_ttl_drops_the_leases_that_outlive_it(
    cache: DynamoDBInviteCache, dynamodb: Any, table_name: str
) -> None:
    leases = DynamoDBLeases(dynamodb, table_name)
    now = time.time()
    cache.put(invite_entry("ls-3", "v", "{}", None, now, POLICY))
    assert isinstance(leases.acquire("ls-3", "v", now, 10), Lease)
    assert cache.shorten_ttl("ls-3", int(now) + 5) == 1
    assert isinstance(leases.acquire("ls-3", "v", now, 10), Lease)


def test_an_eviction_never_runs_past_the_deadline(
    dynamodb: Any, table_name: str, moto_endpoint: str
) -> None:
    """An eviction makes several calls: each is waited for only until the deadline, so a
    table that stops answering cuts it short (an error to report) rather than late."""
    now = time.time()
    for variant in ("a", "b", "c"):
        DynamoDBInviteCache(dynamodb, table_name).put(
            invite_entry("slow", variant, "{}", None, now, POLICY)
        )
    relay = Relay(moto_endpoint)
    try:
        client = boto3.client(
            "dynamodb", endpoint_url=relay.url, config=Config(read_timeout=5, connect_timeout=5)
        )
        deadline = Deadline.from_remaining_ms(600, reserve=0.0)
        cache = DynamoDBInviteCache(client, table_name, TableCalls(call_seconds=10))
        relay.hang()
        started = time.monotonic()
        with pytest.raises(TableSkipped, match="did not finish before the deadline"):
            cache.evict("slow", revoked_at=now, deadline=deadline)
        assert time.monotonic() - started < 0.6 + 0.2
    finally:
        relay.close()
    left = dynamodb.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.invite_partition("slow")}},
    )["Items"]
    assert len(left) == 3  # the copies it did not reach are there: the caller must report them


def test_an_event_found_not_the_guilds_is_remembered_until_its_time_only(
    cache: DynamoDBInviteCache,
) -> None:
    now = time.time()
    assert not cache.foreign_event("ev-code", "77", now)
    cache.remember_foreign_event("ev-code", "77", now + 60)
    assert cache.foreign_event("ev-code", "77", now)
    assert not cache.foreign_event("ev-code", "78", now)
    assert not cache.foreign_event("ev-code", "77", now + 61)  # DynamoDB's TTL is lazy
    cache.evict("ev-code", revoked_at=now)  # still true after a revocation: left to its TTL
    assert cache.foreign_event("ev-code", "77", now)
