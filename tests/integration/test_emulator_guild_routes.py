"""The emulator's guild routes, as guild mode will call them: the guild with its counts, and
its scheduled events. Each is a bucket of its own, and every call is counted."""

from __future__ import annotations

import time

import requests

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
from invite_proxy.adapters.fleet_state.memory import InstanceFleetState
from invite_proxy.domain.deadline import NO_DEADLINE
from invite_proxy.edges.settings import ApiSettings
from invite_proxy.edges.wiring import discord_client, guarded_discord
from tests.conftest import BOT_TOKEN

AUTH = {"Authorization": f"Bot {BOT_TOKEN}"}


def get(emulator: DiscordEmulator, path: str) -> requests.Response:
    return requests.get(f"{emulator.base_url}{path}", headers=AUTH, timeout=5)


def test_the_guild_with_counts_and_without(emulator: DiscordEmulator, guild: Guild) -> None:
    counted = get(emulator, f"/guilds/{guild.id}?with_counts=true").json()
    assert counted["id"] == guild.id
    assert (counted["approximate_member_count"], counted["approximate_presence_count"]) == (42, 7)
    plain = get(emulator, f"/guilds/{guild.id}").json()
    assert "approximate_member_count" not in plain
    assert get(emulator, "/guilds/404404404").json()["code"] == 10004  # Unknown Guild


def test_a_guilds_scheduled_events_soonest_first(emulator: DiscordEmulator, guild: Guild) -> None:
    now = time.time()
    later = emulator.state.add_event(guild, "Later", scheduled_start_time=now + 7200)
    sooner = emulator.state.add_event(guild, "Sooner", scheduled_start_time=now + 3600)
    other = emulator.state.add_guild("Other")
    emulator.state.add_event(other, "Elsewhere", scheduled_start_time=now)
    events = get(emulator, f"/guilds/{guild.id}/scheduled-events").json()
    assert [e["id"] for e in events] == [sooner.id, later.id]
    assert {e["guild_id"] for e in events} == {guild.id}


def test_a_bot_without_manage_server_still_reads_the_guild_and_its_events(
    emulator: DiscordEmulator,
) -> None:
    locked = emulator.state.add_guild("Locked", manage_guild=False)
    assert get(emulator, f"/guilds/{locked.id}").status_code == 200
    assert get(emulator, f"/guilds/{locked.id}/scheduled-events").status_code == 200
    assert get(emulator, f"/guilds/{locked.id}/invites").status_code == 403


def test_each_route_is_its_own_bucket_and_every_call_is_counted(
    emulator: DiscordEmulator, guild: Guild
) -> None:
    paths = [f"/guilds/{guild.id}", f"/guilds/{guild.id}/scheduled-events", "/invites/none-1"]
    buckets = {get(emulator, path).headers["X-RateLimit-Bucket"] for path in paths}
    assert len(buckets) == 3
    routes = {r.route for r in emulator.state.requests}
    assert routes == {
        "GET /guilds/{guild_id}",
        "GET /guilds/{guild_id}/scheduled-events",
        "GET /invites/{code}",
    }


def test_the_one_road_reads_a_guild_and_its_events_each_in_its_own_bucket(
    emulator: DiscordEmulator, guild: Guild
) -> None:
    """Through the guard, as guild mode will: one bucket per route and per guild."""
    settings = ApiSettings.from_env(
        {
            "CACHE_TABLE_NAME": "unused",
            "DISCORD_API_BASE_URL": emulator.base_url,
            "DISCORD_BOT_TOKEN": BOT_TOKEN,
        }
    )
    fleet = InstanceFleetState()
    road = guarded_discord(settings, discord_client(settings), fleet)
    emulator.state.add_event(guild, "Game night", scheduled_start_time=time.time() + 60)
    counted = road.guild_with_counts(guild.id, deadline=NO_DEADLINE).payload
    assert counted["approximate_member_count"] == 42
    [event] = road.guild_events(guild.id, deadline=NO_DEADLINE).payload
    assert event["name"] == "Game night"
    other = emulator.state.add_guild("Other")
    road.guild_with_counts(other.id, deadline=NO_DEADLINE)
    assert set(fleet.buckets) == {
        f"bucket:guild-guild:{guild.id}",
        f"bucket:guild-events:{guild.id}",
        f"bucket:guild-guild:{other.id}",
    }
    assert emulator.state.requests[0].query == "with_counts=true"


def test_a_guild_routes_bucket_is_its_own_for_each_guild(
    emulator: DiscordEmulator, guild: Guild
) -> None:
    """The guild id is a major parameter: one guild's calls leave another's bucket alone."""
    other = emulator.state.add_guild("Other")
    first = get(emulator, f"/guilds/{guild.id}").headers["X-RateLimit-Bucket"]
    second = get(emulator, f"/guilds/{other.id}").headers["X-RateLimit-Bucket"]
    again = get(emulator, f"/guilds/{guild.id}").headers["X-RateLimit-Bucket"]
    assert first == again != second
