"""The emulator's guild routes, as guild mode will call them: the guild with its counts, and
its scheduled events. Each is a bucket of its own, and every call is counted."""

from __future__ import annotations

import time

import requests

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
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
