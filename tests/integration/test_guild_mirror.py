"""Guild mode's mirror in DynamoDB (a moto server): refreshes write only what changed."""

from __future__ import annotations

import time
from typing import Any

import pytest

from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
from invite_proxy.adapters.dynamodb.guild_mirror import DynamoDBGuildMirror
from invite_proxy.domain.guild_mirror import MirroredInvite, mirrored


def invites(count: int, *, prefix: str = "m", channel: str = "general") -> list[MirroredInvite]:
    found = []
    for n in range(count):
        listed = {
            "code": f"{prefix}{n:04}",
            "guild": {"id": "1000"},
            "channel": {"id": "2000", "name": channel},
            "expires_at": None,
            "max_age": 0,
            "created_at": "2026-12-01T10:00:00+00:00",
        }
        invite = mirrored(listed, "1000")
        assert invite is not None
        found.append(invite)
    return found


@pytest.fixture
def mirror(dynamodb: Any, table_name: str) -> DynamoDBGuildMirror:
    return DynamoDBGuildMirror(dynamodb, table_name)


def test_a_refresh_writes_what_changed_and_deletes_what_went(mirror: DynamoDBGuildMirror) -> None:
    now = time.time()
    assert mirror.refreshed_at("1000") is None
    first = mirror.refresh("1000", invites(30), now)
    assert (first.written, first.removed, first.unchanged) == (30, 0, 0)
    again = mirror.refresh("1000", invites(30), now + 1)
    assert (again.written, again.removed, again.unchanged) == (0, 0, 30)
    changed = invites(28) + invites(1, prefix="new")
    changed[0] = invites(1, channel="lobby")[0]
    third = mirror.refresh("1000", changed, now + 2)
    assert (third.written, third.removed, third.unchanged) == (2, 2, 27)
    assert mirror.refreshed_at("1000") == pytest.approx(now + 2)
    assert mirror.get("m0029", now) is None  # unlisted: gone from the mirror
    got = mirror.get("m0000", now)
    assert got is not None
    assert '"lobby"' in got.body


def test_a_mirrored_invite_lives_no_longer_than_the_invite(mirror: DynamoDBGuildMirror) -> None:
    now = time.time()
    short = MirroredInvite("short-1", "1000", '{"code":"short-1"}', int(now) + 60)
    mirror.refresh("1000", [short], now)
    assert mirror.get("short-1", now) == short
    assert mirror.get("short-1", now + 61) is None


def test_the_largest_guild_fits_and_a_hit_reads_one_small_item(
    mirror: DynamoDBGuildMirror,
) -> None:
    now = time.time()
    done = mirror.refresh("1000", invites(1000), now)  # Discord's most for one guild
    assert done.written == 1000
    assert mirror.get("m0999", now) is not None


def test_a_revocations_eviction_takes_the_code_out_of_the_mirror(
    mirror: DynamoDBGuildMirror, dynamodb: Any, table_name: str
) -> None:
    now = time.time()
    mirror.refresh("1000", invites(2), now)
    DynamoDBInviteCache(dynamodb, table_name).evict("m0001", revoked_at=now)
    assert mirror.get("m0001", now) is None
    assert mirror.get("m0000", now) is not None


def test_a_refresh_does_not_bring_back_what_a_revocation_overtook(
    mirror: DynamoDBGuildMirror, dynamodb: Any, table_name: str
) -> None:
    listed_at = time.time()
    # The listing left Discord with m0001 in it; the admin's DELETE then marks and evicts
    # it before the refresh writes: the refresh finds the mark and takes its copy back.
    DynamoDBInviteCache(dynamodb, table_name).evict("m0001", revoked_at=listed_at + 0.5)
    done = mirror.refresh("1000", invites(3), listed_at + 1, listed_at=listed_at)
    assert done.written == 2
    assert mirror.get("m0001", listed_at + 1) is None
    assert mirror.get("m0002", listed_at + 1) is not None
    # An older revocation (before the listing was read) is not this listing's business.
    later = mirror.refresh("1000", invites(3), listed_at + 3, listed_at=listed_at + 2)
    assert later.written == 1
    assert mirror.get("m0001", listed_at + 3) is not None


def test_each_guilds_record_is_its_own(mirror: DynamoDBGuildMirror) -> None:
    now = time.time()
    assert mirror.state().guilds == {}
    mirror.refresh("1000", invites(1), now, listed_at=now - 1)
    mirror.record_guild("1000", {"approximate_member_count": 7}, "our-vanity", now)
    mirror.mark_unreadable("2000", now + 600)
    mirror.record_events("1000", [{"id": "5", "name": "Launch"}], now)
    state = mirror.state()
    ours, theirs = state.record("1000"), state.record("2000")
    assert ours.refreshed_at == pytest.approx(now - 1)  # as old as the read, not the write
    assert (ours.counts, ours.vanity) == ({"approximate_member_count": 7}, "our-vanity")
    assert ours.counts_at == pytest.approx(now)
    assert ours.events_at == pytest.approx(now)
    assert not ours.unreadable(now)
    assert theirs.unreadable(now)
    assert not theirs.unreadable(now + 601)
    assert state.vanity_guild("OUR-vanity") == "1000"
    assert mirror.events("1000") == [{"id": "5", "name": "Launch"}]
    assert mirror.events("2000") is None
    mirror.record_guild("1000", {}, None, now + 1)  # the vanity code was given up
    assert mirror.state().record("1000").vanity is None
    assert mirror.state().record("1000").refreshed_at == pytest.approx(now - 1)


def test_a_code_evicted_but_still_listed_is_written_again_by_the_next_read(
    mirror: DynamoDBGuildMirror, dynamodb: Any, table_name: str
) -> None:
    # A DELETE that Discord refused still evicts; the invite is still on Discord, so the
    # next list shows it with the same digest: the eviction forgot that digest.
    now = time.time()
    mirror.refresh("1000", invites(2), now, listed_at=now)
    DynamoDBInviteCache(dynamodb, table_name).evict("m0001", revoked_at=now + 1)
    assert mirror.get("m0001", now + 2) is None
    again = mirror.refresh("1000", invites(2), now + 3, listed_at=now + 2)
    assert (again.written, again.unchanged) == (1, 1)
    assert mirror.get("m0001", now + 3) is not None
