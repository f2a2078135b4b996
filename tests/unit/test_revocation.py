"""One revocation (the admin DELETE's path) over in-memory adapters."""

from __future__ import annotations

import json

import pytest

from invite_proxy.domain.cache_policy import CachePolicy, invite_entry
from invite_proxy.domain.costs import REVOCATION_FOLLOWUP_SECONDS
from invite_proxy.domain.deadline import NO_DEADLINE
from invite_proxy.domain.errors import (
    CacheEvictionFailed,
    DiscordMissingPermissions,
    DiscordRateLimited,
    DiscordTimeout,
    InvalidInput,
    PermissionDenied,
    UnknownInvite,
)
from tests.unit.conftest import World

POLICY = CachePolicy(
    fresh_seconds=60, max_age_seconds=86_400, negative_seconds=60, stale_if_error_seconds=3600
)
FAR = NO_DEADLINE


def cache_two_variants(world: World, code: str) -> None:
    for variant in ("counts=0#event=-", "counts=1#event=-"):
        body = json.dumps({"code": code, "guild": {"id": "1000"}})
        world.cache.put(invite_entry(code, variant, body, None, world.clock.now, POLICY))


def test_a_delete_revokes_and_evicts_every_variant(world: World) -> None:
    world.discord.add_invite("gone-1")
    cache_two_variants(world, "gone-1")
    revocation = world.api()[1].revoke_request("gone-1", "Event%20over", actor="a", deadline=FAR)
    assert (revocation.code, revocation.guild_id) == ("gone-1", "1000")
    assert world.discord.deleted == ["gone-1"]
    assert world.cache.variants_of("gone-1") == []


def test_an_unknown_invite_is_still_evicted(world: World) -> None:
    cache_two_variants(world, "ghost-1")
    with pytest.raises(UnknownInvite):
        world.api()[1].revoke_request("ghost-1", None, actor="a", deadline=FAR)
    assert world.cache.variants_of("ghost-1") == []


def test_a_bot_without_permission_is_the_admins_403(world: World) -> None:
    world.discord.add_invite("locked-1")
    world.discord.refuse["DELETE"] = DiscordMissingPermissions(status=403)
    with pytest.raises(PermissionDenied):
        world.api()[1].revoke_request("locked-1", None, actor="a", deadline=FAR)


def test_bad_input_never_reaches_discord(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.api()[1].revoke_request("bad/code", None, actor="a", deadline=FAR)
    with pytest.raises(InvalidInput):
        world.api()[1].revoke_request("fine-1", "100%", actor="a", deadline=FAR)
    assert world.discord.calls == []


def test_a_failed_eviction_says_retry(world: World) -> None:
    world.discord.add_invite("stuck-1")
    revocations = world.api()[1]
    world.table.down = True
    with pytest.raises(CacheEvictionFailed):
        revocations.revoke_request("stuck-1", None, actor="a", deadline=FAR)
    assert world.discord.deleted == ["stuck-1"]


def test_a_delete_never_waits_past_its_deadline(world: World) -> None:
    world.discord.add_invite("held-1")
    world.fleet.view().take_bucket("bucket:invites-delete", world.clock.now, 1e6)  # a probe
    deadline = world.deadline(3.0)
    with pytest.raises(DiscordRateLimited):
        world.api()[1].revoke_request("held-1", None, actor="a", deadline=deadline)
    assert world.clock.now < deadline.at
    assert world.discord.calls == []


def test_a_delete_that_timed_out_with_a_failed_eviction_says_retry(world: World) -> None:
    """Discord may have deleted it before the timeout: a copy left behind must be told."""
    world.discord.add_invite("maybe-1")
    cache_two_variants(world, "maybe-1")
    world.discord.faults.append(DiscordTimeout())
    revocations = world.api()[1]
    world.table.down = True
    with pytest.raises(CacheEvictionFailed) as caught:
        revocations.revoke_request("maybe-1", None, actor="a", deadline=FAR)
    assert caught.value.retry_after == 1.0


def test_a_refused_delete_with_a_failed_eviction_is_just_refused(world: World) -> None:
    world.discord.add_invite("kept-1")
    world.discord.refuse["DELETE"] = DiscordMissingPermissions(status=403)
    revocations = world.api()[1]
    world.table.down = True
    with pytest.raises(PermissionDenied):  # Discord surely kept it: no copy is wrong
        revocations.revoke_request("kept-1", None, actor="a", deadline=FAR)


def test_a_deletes_waits_end_in_time_for_its_eviction(world: World) -> None:
    world.discord.add_invite("held-2")
    world.fleet.view().take_bucket("bucket:invites-delete", world.clock.now, 1e6)  # a probe
    deadline = world.deadline(10.0)
    followup = REVOCATION_FOLLOWUP_SECONDS
    evicting_from = world.clock.now + 10 - followup  # kept back for the record and eviction
    with pytest.raises(DiscordRateLimited):
        world.api()[1].revoke_request("held-2", None, actor="a", deadline=deadline)
    assert world.clock.now < evicting_from
    assert world.discord.calls == []
