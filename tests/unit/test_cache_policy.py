"""TTL and freshness arithmetic: the invite's own life decides how long we may keep it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from invite_proxy.domain.cache_policy import (
    CachePolicy,
    EntryKind,
    etag_for,
    invite_entry,
    invite_ttl,
    unknown_entry,
)
from invite_proxy.domain.models import Invite

POLICY = CachePolicy(
    fresh_seconds=60, max_age_seconds=86_400, negative_seconds=30, stale_if_error_seconds=600
)
NOW = 1_800_000_000.25
NOW_DT = datetime.fromtimestamp(NOW, UTC)


def test_expires_at_sets_the_ttl() -> None:
    invite = Invite.model_validate(
        {"code": "abc", "expires_at": (NOW_DT + timedelta(hours=2)).isoformat()}
    )
    assert invite_ttl(NOW, invite.expiry(), POLICY) == int(NOW) + 7200


def test_metadata_created_at_plus_max_age_sets_the_ttl() -> None:
    created = NOW_DT - timedelta(minutes=30)
    invite = Invite.model_validate(
        {"code": "abc", "created_at": created.isoformat(), "max_age": 3600}
    )
    assert invite.expiry() == created + timedelta(seconds=3600)
    assert invite_ttl(NOW, invite.expiry(), POLICY) == int(NOW) + 1800


def test_max_age_zero_is_permanent_and_capped_by_max_cache_age() -> None:
    invite = Invite.model_validate(
        {"code": "abc", "created_at": NOW_DT.isoformat(), "max_age": 0, "expires_at": None}
    )
    assert invite.expiry() is None
    assert invite_ttl(NOW, None, POLICY) == int(NOW) + POLICY.max_age_seconds


def test_earliest_of_expires_at_and_metadata_wins() -> None:
    invite = Invite.model_validate(
        {
            "code": "abc",
            "expires_at": (NOW_DT + timedelta(hours=5)).isoformat(),
            "created_at": NOW_DT.isoformat(),
            "max_age": 3600,
        }
    )
    assert invite.expiry() == NOW_DT + timedelta(hours=1)


def test_far_expiry_is_capped_by_max_cache_age() -> None:
    far = NOW_DT + timedelta(days=30)
    assert invite_ttl(NOW, far, POLICY) == int(NOW) + POLICY.max_age_seconds


def test_already_expired_invite_gives_an_entry_that_is_already_expired() -> None:
    entry = invite_entry("abc", "v", "{}", NOW_DT - timedelta(seconds=5), NOW, POLICY)
    assert entry.is_expired(NOW)
    assert not entry.is_fresh(NOW)
    assert not entry.can_serve_stale(NOW, POLICY)


def test_freshness_never_outlives_the_invite() -> None:
    entry = invite_entry("abc", "v", "{}", NOW_DT + timedelta(seconds=10), NOW, POLICY)
    assert entry.expires_at == int(NOW) + 10
    assert entry.fresh_until == entry.expires_at
    assert entry.fresh_for(NOW) == 9  # floor of 9.75 s left


def test_fresh_then_stale_then_too_stale() -> None:
    entry = invite_entry("abc", "v", "{}", None, NOW, POLICY)
    assert entry.is_fresh(NOW + 59)
    assert not entry.is_fresh(NOW + 60)
    assert entry.can_serve_stale(NOW + 60 + 600, POLICY)
    assert not entry.can_serve_stale(NOW + 60 + 601, POLICY)


def test_negative_entry_lives_for_the_negative_ttl_and_is_never_served_stale() -> None:
    entry = unknown_entry("dead", "v", "{}", NOW, POLICY)
    assert entry.kind is EntryKind.UNKNOWN
    assert entry.is_fresh(NOW + 29)
    assert entry.is_expired(NOW + 31)
    assert not entry.can_serve_stale(NOW + 1, POLICY)


@pytest.mark.parametrize("body", ["{}", '{"code": "x"}', "ü" * 100])
def test_etag_is_a_quoted_strong_validator_of_the_body(body: str) -> None:
    tag = etag_for(body)
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert len(tag) == 34
    assert tag == etag_for(body)
    assert tag != etag_for(body + " ")
