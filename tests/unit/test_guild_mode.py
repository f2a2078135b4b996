"""Guild mode over in-memory adapters: lookups answered from each guild's own list.

The upstream bound is what these tests hold above all: however many codes are
tried, the fleet's Discord calls for lookups are a few per guild per window.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import (
    DiscordMissingPermissions,
    DiscordServerError,
    LookupRecentlyFailed,
    UnknownInvite,
)
from invite_proxy.domain.guild_mirror import guild_work
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.services.lookup import CacheStatus, LookupResult
from tests.unit.conftest import World
from tests.unit.fakes import LeaseRecord

GUILD = "1000"
OTHER = "2000"
GUILD_MODE = {"ALLOWED_GUILD_IDS": GUILD, "GUILD_LIST_MIN_REFRESH_SECONDS": 10}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def query(code: str, **params: str) -> InviteQuery:
    return InviteQuery.parse(code, params or None)


def routes(world: World) -> Counter[str]:
    """The Discord calls made, by route: ``GET /guilds/{id}/invites`` and so on."""
    named = Counter[str]()
    for route in world.discord.calls:
        parts = route.path.split("/")
        if parts[1] == "guilds":
            parts[2] = "{guild_id}"
        named[f"{route.method} {'/'.join(parts)}"] += 1
    return named


def invite_calls(world: World) -> int:
    return sum(1 for r in world.discord.calls if r.path.startswith("/invites/"))


def listed(world: World, code: str, guild_id: str = GUILD, **fields: Any) -> dict[str, Any]:
    metadata = {"created_at": iso(world.clock.now - 60), "max_age": 0, "uses": 1}
    return world.discord.add_invite(code, guild_id, **(metadata | fields))


@pytest.fixture
def guilds(world: World) -> World:
    listed(world, "ours-1")
    listed(world, "ours-2")
    world.discord.counts[GUILD] = {
        "approximate_member_count": 120,
        "approximate_presence_count": 30,
    }
    return world


def test_a_listed_code_is_answered_from_the_list_in_a_lookups_shape(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    first = lookups.lookup(query("ours-1"))
    assert first.found
    assert first.cache_status is CacheStatus.MISS
    body = json.loads(first.entry.body)
    assert body["code"] == "ours-1"
    assert not {"uses", "max_age", "created_at"} & set(body)  # the listing's own metadata
    assert invite_calls(guilds) == 0  # no GET /invites/{code}: the list knew it
    assert lookups.lookup(query("ours-2")).found
    assert lookups.lookup(query("ours-1")).cache_status is CacheStatus.HIT
    assert routes(guilds) == {
        "GET /guilds/{guild_id}/invites": 1,
        "GET /guilds/{guild_id}": 1,
    }


def test_a_flood_of_random_codes_costs_one_read_of_the_lists_per_interval(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    answers: list[LookupResult] = []
    for second in range(60):  # a minute at 10 random codes a second
        answers += [lookups.lookup(query(f"rnd{second:03d}x{n}")) for n in range(10)]
        guilds.clock.advance(1)
    assert not any(a.found for a in answers)
    assert invite_calls(guilds) == 0
    # One read of the lists per GUILD_LIST_MIN_REFRESH_SECONDS, however many codes.
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 6
    assert all(a.fresh_for <= 10 for a in answers)  # no 404 is kept past the next read
    assert not guilds.cache.unknown
    assert not guilds.cache.entries


def test_an_invite_made_now_is_served_once_the_lists_may_be_read_again(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    assert lookups.lookup(query("ours-1")).found
    listed(guilds, "new-1")
    early = lookups.lookup(query("new-1"))
    assert not early.found
    assert 0 < early.fresh_for <= 10
    guilds.clock.advance(early.fresh_for + 0.1)  # as a browser would, obeying max-age
    assert lookups.lookup(query("new-1")).found
    assert invite_calls(guilds) == 0


def test_counts_and_events_come_from_one_call_per_guild_per_window(guilds: World) -> None:
    guilds.discord.events[GUILD] = [{"id": "555", "guild_id": GUILD, "name": "Launch"}]
    lookups = guilds.lookups(**GUILD_MODE, CACHE_FRESH_SECONDS=60)
    counted = json.loads(lookups.lookup(query("ours-1", with_counts="true")).entry.body)
    assert (counted["approximate_member_count"], counted["approximate_presence_count"]) == (
        120,
        30,
    )
    assert "approximate_member_count" not in json.loads(lookups.lookup(query("ours-2")).entry.body)
    event = json.loads(lookups.lookup(query("ours-1", guild_scheduled_event_id="0555")).entry.body)
    assert event["guild_scheduled_event"]["name"] == "Launch"
    entries = len(guilds.cache.entries)
    for n in range(200):  # random event ids on a real code: no call each, and no write
        other = lookups.lookup(query("ours-2", guild_scheduled_event_id=str(9000 + n)))
        assert "guild_scheduled_event" not in json.loads(other.entry.body)
    assert len(guilds.cache.entries) == entries
    lookups.lookup(query("ours-2", with_counts="true"))
    assert routes(guilds) == {
        "GET /guilds/{guild_id}/invites": 1,
        "GET /guilds/{guild_id}": 1,  # the counts read with the list serve the window
        "GET /guilds/{guild_id}/scheduled-events": 1,
    }
    assert invite_calls(guilds) == 0
    guilds.clock.advance(61)
    lookups.lookup(query("ours-1", with_counts="true"))
    assert routes(guilds)["GET /guilds/{guild_id}"] == 2


def test_the_upstream_bound_holds_for_every_guild_whatever_is_asked(world: World) -> None:
    guild_ids = [str(1000 + g) for g in range(3)]
    for guild_id in guild_ids:
        for n in range(5):
            listed(world, f"g{guild_id}i{n}", guild_id)
        world.discord.events[guild_id] = []
        world.discord.vanity[guild_id] = f"vanity-{guild_id}"
        world.discord.invites[f"vanity-{guild_id}"] = {"code": f"vanity-{guild_id}"}
    lookups = world.lookups(
        ALLOWED_GUILD_IDS=",".join(guild_ids),
        GUILD_LIST_MIN_REFRESH_SECONDS=10,
        CACHE_FRESH_SECONDS=60,
    )
    for step in range(600):  # ten minutes: real codes in every variant, and random ones
        guild_id = guild_ids[step % 3]
        lookups.lookup(query(f"g{guild_id}i{step % 5}", with_counts="true"))
        lookups.lookup(query(f"g{guild_id}i{step % 5}", guild_scheduled_event_id=str(step)))
        lookups.lookup(query(f"random{step}"))
        lookups.lookup(query(f"VANITY-{guild_id}", guild_scheduled_event_id=str(step)))
        world.clock.advance(1)
    # Per guild and freshness window W (60 s): W / GUILD_LIST_MIN_REFRESH_SECONDS listings and
    # as many guild reads, one more guild read for counts, one events read, one vanity
    # lookup: 2 x 6 + 3 = 15 a guild (docs/protections.md, "The upstream bound").
    windows = 10
    per_guild = Counter(r.path.split("/")[2] for r in world.discord.calls)
    vanity_calls = Counter(r.path for r in world.discord.calls if r.path.startswith("/invites/"))
    per_guild.update({path.split("-")[1]: n for path, n in vanity_calls.items()})
    assert all(per_guild[g] <= 15 * windows for g in guild_ids), per_guild
    assert sum(vanity_calls.values()) <= 3 * windows


def test_the_vanity_code_is_mirrored_from_its_own_lookup_once_a_window(guilds: World) -> None:
    guilds.discord.vanity[GUILD] = "our-vanity"
    # Discord's listing never shows the vanity invite: only GET /invites/{code} knows it.
    guilds.discord.invites["our-vanity"] = {"code": "our-vanity", "guild": {"id": GUILD}}
    lookups = guilds.lookups(**GUILD_MODE, CACHE_FRESH_SECONDS=60)
    assert lookups.lookup(query("our-vanity")).found
    assert invite_calls(guilds) == 1
    # Any spelling, any variant, any event id: from the mirror, no call each.
    spelled = lookups.lookup(query("OUR-Vanity", with_counts="true"))
    assert json.loads(spelled.entry.body)["code"] == "our-vanity"
    for n in range(50):
        assert lookups.lookup(query("our-vanity", guild_scheduled_event_id=str(n + 1))).found
    assert invite_calls(guilds) == 1
    # A rule run's listing (which never shows it) keeps it.
    guilds.runner(ALLOWED_GUILD_IDS=GUILD).run_event(
        {"name": "dry", "guild_id": GUILD, "match": {"permanent": True}, "dry_run": True},
        Deadline.from_remaining_ms(300_000, clock=guilds.clock),
    )
    assert "our-vanity" in guilds.mirror.listed
    guilds.clock.advance(61)  # read again with the next list, once a window
    lookups.lookup(query("nowhere-1"))
    assert invite_calls(guilds) == 2


def test_a_guild_whose_list_cannot_be_read_falls_back_to_per_code_lookups(
    guilds: World, caplog: pytest.LogCaptureFixture
) -> None:
    guilds.discord.refuse[f"GET /guilds/{GUILD}/invites"] = DiscordMissingPermissions(status=403)
    listed(guilds, "theirs-1", OTHER)
    caplog.set_level(logging.WARNING)
    lookups = guilds.lookups(**GUILD_MODE)
    assert lookups.lookup(query("ours-1")).found  # per code, under the budget
    assert invite_calls(guilds) == 1
    theirs = lookups.lookup(query("theirs-1"))  # per code, and not ours: as an unknown invite
    assert not theirs.found
    assert lookups.lookup(query("theirs-1")).cache_status is CacheStatus.HIT  # remembered
    warnings = [r for r in caplog.records if "Manage Server" in r.getMessage()]
    assert len(warnings) == 1  # one warning, not one a lookup
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 1
    guilds.clock.advance(601)  # tried again after a while
    del guilds.discord.refuse[f"GET /guilds/{GUILD}/invites"]
    lookups.lookup(query("ours-2"))
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 2
    calls_before = invite_calls(guilds)
    guilds.clock.advance(61)
    assert lookups.lookup(query("ours-1")).found
    assert invite_calls(guilds) == calls_before  # from the list again


def test_a_revoked_code_leaves_the_mirror_at_once(guilds: World) -> None:
    lookups, revocations = guilds.api(**GUILD_MODE)
    assert lookups.lookup(query("ours-1")).found
    revocations.revoke_request("ours-1", None, actor="unit")
    gone = lookups.lookup(query("ours-1"))
    assert not gone.found
    assert gone.fresh_for <= 10


def test_a_listing_read_before_a_revocation_does_not_bring_it_back(guilds: World) -> None:
    lookups, revocations = guilds.api(**GUILD_MODE)

    def revoke_meanwhile(route: Any) -> None:
        # The listing has left Discord with the code in it; now the admin revokes it.
        revocations.revoke_request("ours-1", None, actor="unit")

    guilds.discord.while_answering.append(revoke_meanwhile)
    lookups.lookup(query("ours-2"))
    assert "ours-1" not in guilds.mirror.listed
    assert not lookups.lookup(query("ours-1")).found


def test_an_invite_deleted_on_discord_itself_leaves_within_a_window(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE, CACHE_FRESH_SECONDS=60)
    assert lookups.lookup(query("ours-1")).found
    del guilds.discord.invites["ours-1"]
    guilds.discord.guilds[GUILD].remove("ours-1")
    guilds.clock.advance(61)
    assert not lookups.lookup(query("ours-1")).found
    assert invite_calls(guilds) == 0


def test_an_expired_invite_is_never_served_from_the_list(world: World) -> None:
    listed(world, "brief-1", max_age=120, created_at=iso(world.clock.now - 60))
    lookups = world.lookups(**GUILD_MODE)
    first = lookups.lookup(query("brief-1"))
    assert first.found
    assert first.fresh_for <= 60
    world.clock.advance(61)
    assert not lookups.lookup(query("brief-1")).found


def test_a_rule_runs_listing_refreshes_the_mirror(guilds: World) -> None:
    runner = guilds.runner(ALLOWED_GUILD_IDS=GUILD)
    runner.run_event(
        {"name": "dry", "guild_id": GUILD, "match": {"permanent": True}, "dry_run": True},
        Deadline.from_remaining_ms(300_000, clock=guilds.clock),
    )
    assert set(guilds.mirror.listed) == {"ours-1", "ours-2"}
    lookups = guilds.lookups(**GUILD_MODE)
    assert lookups.lookup(query("ours-1")).found
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 1  # the rule run's, serving both


def test_a_lookup_waits_on_anothers_refresh_no_longer_than_the_bound(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE, COALESCE_WAIT_SECONDS=1)
    # Another instance is reading the list now, and takes its time.
    guilds.lease_records[(guild_work(GUILD), "listing")] = LeaseRecord(
        "elsewhere", guilds.clock.now + 30
    )
    started = guilds.clock.now
    result = lookups.lookup(query("nowhere-1"))
    assert not result.found
    assert guilds.clock.now - started <= 1.0
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 0


def test_a_refresh_another_finishes_is_used_at_once(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE, COALESCE_WAIT_SECONDS=2)
    other = guilds.lookups(**GUILD_MODE)
    guilds.lease_records[(guild_work(GUILD), "listing")] = LeaseRecord(
        "elsewhere", guilds.clock.now + 30
    )

    def the_other_instance_reads_the_list() -> None:
        del guilds.lease_records[(guild_work(GUILD), "listing")]
        other.lookup(query("ours-2"))

    guilds.clock.meanwhile.append(the_other_instance_reads_the_list)
    started = guilds.clock.now
    assert lookups.lookup(query("ours-1")).found
    assert guilds.clock.now - started < 0.5


def test_a_failing_discord_is_asked_for_the_list_once_per_interval(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    guilds.discord.refuse[f"GET /guilds/{GUILD}/invites"] = DiscordServerError(status=500)
    with pytest.raises(DiscordServerError):
        lookups.lookup(query("ours-1"))
    for _ in range(99):  # the others answer from that failure, at once, for the interval
        started = guilds.clock.now
        with pytest.raises(LookupRecentlyFailed):
            lookups.lookup(query("ours-1"))
        assert guilds.clock.now == started
        guilds.clock.advance(0.1)
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 1


def test_with_the_table_down_an_instance_reads_the_lists_itself(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    other = guilds.lookups(**GUILD_MODE)
    guilds.table.down = True
    for n in range(100):  # real codes, and a flood of random ones, on two instances
        assert lookups.lookup(query("ours-1")).found
        assert other.lookup(query("ours-2", with_counts="true")).found
        assert not lookups.lookup(query(f"rnd{n}")).found
        guilds.clock.advance(0.3)
    assert invite_calls(guilds) == 0  # never a lookup per code
    # Each instance reads the list itself, once per interval: 30 s, 2 instances.
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] <= 2 * (30 / 10 + 1)
    guilds.table.down = False
    listed(guilds, "new-1")
    guilds.clock.advance(11)
    assert lookups.lookup(query("new-1")).found  # the table's mirror again


def test_with_the_table_down_a_failed_read_is_not_a_guess(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    guilds.table.down = True
    guilds.discord.refuse[f"GET /guilds/{GUILD}/invites"] = DiscordServerError(status=500)
    with pytest.raises(DiscordServerError):
        lookups.lookup(query("ours-1"))
    with pytest.raises(LookupRecentlyFailed):
        lookups.lookup(query("ours-1"))
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] == 1


def test_an_invite_a_failed_delete_left_on_discord_comes_back_with_the_next_list(
    guilds: World,
) -> None:
    lookups, revocations = guilds.api(**GUILD_MODE)
    assert lookups.lookup(query("ours-1")).found
    guilds.discord.refuse["DELETE"] = DiscordServerError(status=500)
    with pytest.raises(DiscordServerError):
        revocations.revoke_request("ours-1", None, actor="unit")
    assert not lookups.lookup(query("ours-1")).found  # evicted, whatever Discord said
    guilds.clock.advance(11)
    lookups.lookup(query("nowhere-1"))  # the lists are read again
    assert lookups.lookup(query("ours-1")).found  # Discord still lists it: served again


def test_an_answer_from_the_list_is_as_fresh_as_the_list(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE, CACHE_FRESH_SECONDS=60)
    lookups.lookup(query("ours-1"))
    read_at = guilds.mirror.records[GUILD].refreshed_at
    guilds.clock.advance(5)
    answer = lookups.lookup(query("ours-2"))
    assert answer.entry.fetched_at == read_at
    assert answer.fresh_for == 55


def test_a_revocation_after_the_list_was_read_keeps_its_answer_out_of_the_cache(
    guilds: World,
) -> None:
    lookups = guilds.lookups(**GUILD_MODE)
    lookups.lookup(query("ours-1"))
    # A revocation marked the code after the list was read, and this lookup reads the
    # mirrored copy before the revocation's eviction deletes it: served once, never kept.
    guilds.cache.revoked["ours-2"] = _revoked_at(guilds.clock.now + 0.5)
    guilds.clock.advance(1)
    assert lookups.lookup(query("ours-2")).found
    assert ("ours-2", query("ours-2").variant) not in guilds.cache.entries


def test_a_vanity_code_that_fails_is_asked_once_a_window(guilds: World) -> None:
    guilds.discord.vanity[GUILD] = "gone-vanity"  # Discord answers its lookup 404
    lookups = guilds.lookups(**GUILD_MODE, CACHE_FRESH_SECONDS=60)
    for _ in range(600):  # ten minutes of random codes: a list read every 10 s
        lookups.lookup(query("nowhere-1"))
        guilds.clock.advance(1)
    assert routes(guilds)["GET /guilds/{guild_id}/invites"] >= 50
    assert invite_calls(guilds) <= 10


def _revoked_at(at: float) -> Any:
    from tests.unit.fakes import _Revoked

    return _Revoked(at)


def test_a_guilds_card_shows_its_vanity_its_chosen_or_its_most_used_lasting_invite(
    world: World,
) -> None:
    listed(world, "brief-1", max_age=3600, uses=90)  # expires: never a card's
    listed(world, "capped-1", max_uses=5, uses=4)  # runs out: never a card's
    listed(world, "lasting-1", uses=3)
    listed(world, "lasting-2", uses=7)
    lookups = world.lookups(**GUILD_MODE)
    card = lookups.guild_invite(GUILD, with_counts=True)
    assert json.loads(card.entry.body)["code"] == "lasting-2"
    chosen = world.lookups(**GUILD_MODE, GUILD_INVITE_CODES=f"{GUILD}=lasting-1")
    assert json.loads(chosen.guild_invite(GUILD).entry.body)["code"] == "lasting-1"
    world.discord.vanity[GUILD] = "our-vanity"
    world.discord.invites["our-vanity"] = {"code": "our-vanity", "guild": {"id": GUILD}}
    world.clock.advance(61)  # the next read of the list learns the vanity code
    assert json.loads(chosen.guild_invite(GUILD).entry.body)["code"] == "our-vanity"
    assert invite_calls(world) == 1  # the vanity's own lookup; the rest from the list


def test_no_lasting_invite_or_no_guild_of_ours_is_an_unknown_invite(world: World) -> None:
    listed(world, "brief-1", max_age=3600)
    with pytest.raises(UnknownInvite):
        world.lookups(**GUILD_MODE).guild_invite(GUILD)
    with pytest.raises(UnknownInvite):
        world.lookups(**GUILD_MODE).guild_invite(OTHER)
    with pytest.raises(UnknownInvite):
        world.lookups().guild_invite(GUILD)  # open mode: no guild's list is kept
    assert routes(world)["GET /guilds/{guild_id}/invites"] == 1


def test_a_guilds_card_is_served_as_it_was_while_discord_fails(guilds: World) -> None:
    lookups = guilds.lookups(**GUILD_MODE, CACHE_FRESH_SECONDS=60)
    assert json.loads(lookups.guild_invite(GUILD).entry.body)["code"] in {"ours-1", "ours-2"}
    guilds.clock.advance(61)  # the list is due again, and Discord fails to list it
    guilds.discord.refuse[f"GET /guilds/{GUILD}/invites"] = DiscordServerError(status=500)
    assert lookups.guild_invite(GUILD).found  # the card's code as last read


def test_a_busy_guild_card_costs_no_table_call_within_the_memorys_second(world: World) -> None:
    listed(world, "lasting-1", uses=3)
    lookups = world.lookups(**GUILD_MODE)
    assert lookups.guild_invite(GUILD).found
    before = world.table.calls
    for _ in range(100):
        assert lookups.guild_invite(GUILD).found
    assert world.table.calls == before  # the card's code and its invite, both in memory
    world.clock.advance(1.0)
    assert lookups.guild_invite(GUILD).found
    assert world.table.calls == before + 2  # each read once again
