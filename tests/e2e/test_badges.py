"""`/invites/{code}/badge.json` through the local run: shields.io's endpoint badge."""

from __future__ import annotations

from collections.abc import Callable

import requests

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
from invite_proxy.edges.badges import message_of
from invite_proxy_local.runner import LocalRun


def test_an_invite_is_a_badge_of_its_members_and_online(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="badge-1")
    run = start_api()
    answer = requests.get(f"{run.url}/invites/badge-1/badge.json", timeout=10)
    badge = answer.json()
    assert answer.status_code == 200
    assert badge == {
        "schemaVersion": 1,
        "label": "discord",
        "message": f"{guild.member_count} members, {guild.presence_count} online",
        "color": "5865F2",
        "namedLogo": "discord",
        "logoColor": "white",
        "cacheSeconds": badge["cacheSeconds"],
    }
    assert 0 < badge["cacheSeconds"] <= 60  # the proxy's freshness
    assert answer.headers["Cache-Control"] == f"public, max-age={badge['cacheSeconds']}"
    again = requests.get(f"{run.url}/invites/badge-1/badge.json", timeout=10)
    assert again.headers["X-Cache"] == "HIT"  # the same cache as the lookup's counts


def test_every_answer_is_a_badge_shields_can_show(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    for code in ("badge-share-1", "badge-share-2"):
        emulator.state.add_invite(guild, code=code)
    run = start_api(LOOKUP_SHARE_PER_CALLER="1")
    unknown = requests.get(f"{run.url}/invites/no-such-1/badge.json", timeout=10)
    assert (unknown.status_code, unknown.json()["message"]) == (200, "invalid invite")
    assert unknown.json()["isError"] is True
    not_a_code = requests.get(f"{run.url}/invites/a.b/badge.json", timeout=10)
    assert (not_a_code.status_code, not_a_code.json()["message"]) == (200, "invalid invite")
    # The caller's share went on the unknown code: the next miss cannot be said now.
    later = requests.get(f"{run.url}/invites/badge-share-2/badge.json", timeout=10)
    assert (later.status_code, later.json()["message"]) == (200, "unavailable")
    assert later.headers["Cache-Control"] == "no-store"


def test_a_guilds_badge_is_its_lasting_invites(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="badge-guild-1", uses=3)
    run = start_api(ALLOWED_GUILD_IDS=guild.id)
    badge = requests.get(f"{run.url}/guilds/{guild.id}/badge.json", timeout=10).json()
    assert badge["message"] == f"{guild.member_count} members, {guild.presence_count} online"
    other = emulator.state.add_guild("Not ours")
    none = requests.get(f"{run.url}/guilds/{other.id}/badge.json", timeout=10)
    assert (none.status_code, none.json()["message"]) == (200, "invalid invite")


def test_counts_read_at_a_glance() -> None:
    assert message_of({"approximate_member_count": 1234, "approximate_presence_count": 56}) == (
        "1.2k members, 56 online"
    )
    assert message_of({"approximate_member_count": 12_000_000}) == "12M members, ? online"
