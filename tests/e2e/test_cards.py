"""The image cards and the icon route through the local run, against the emulator's API
and CDN: what a README's <img> gets, and what strangers can make the proxy spend."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Callable

import requests

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.server import CDN_ROUTE
from discord_emulator.state import Guild
from invite_proxy_local.runner import LocalRun

HASH = "5f4dcc3b5aa765d61d8327deb882cf99"
SVG = "{http://www.w3.org/2000/svg}"


def cdn_calls(emulator: DiscordEmulator) -> list[str]:
    return [r.path for r in emulator.state.requests if r.route == CDN_ROUTE]


def lookups(emulator: DiscordEmulator) -> int:
    return sum(r.route == "GET /invites/{code}" for r in emulator.state.requests)


def test_a_card_embeds_its_icon_and_is_kept_as_long_as_the_invite_is_fresh(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("Pixel & <Art> Club", icon="a_" + HASH)
    emulator.state.add_invite(guild, code="card-1", channel_name="game-night", max_age=3600)
    run = start_api()
    answer = requests.get(f"{run.url}/invites/card-1/card.svg", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert answer.headers["Content-Security-Policy"] == "default-src 'none'; img-src data:"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert 0 < int(answer.headers["Cache-Control"].removeprefix("public, max-age=")) <= 60
    root = ET.fromstring(answer.content)  # noqa: S314 (the proxy under test wrote it)
    [image] = root.iter(SVG + "image")
    assert image.attrib["href"].startswith("data:image/png;base64,")  # the still, embedded
    drawn = " ".join("".join(t.itertext()) for t in root.iter(SVG + "text"))
    assert "Pixel & <Art> Club" in drawn  # escaped in the XML, drawn as written
    assert f"{guild.presence_count} Online" in drawn
    assert f"{guild.member_count} Members" in drawn
    assert cdn_calls(emulator) == [f"/icons/{guild.id}/a_{HASH}.png"]
    # The next card, and either theme, cost no fetch of the icon.
    light = requests.get(f"{run.url}/invites/card-1/card.svg?theme=light", timeout=10)
    assert light.status_code == 200
    assert light.content != answer.content
    assert len(cdn_calls(emulator)) == 1
    assert lookups(emulator) == 1  # one lookup with counts, from the cache since
    # The component's icon after its card: the same lookup, the icon already kept.
    icon = requests.get(f"{run.url}/invites/card-1/icons/a_{HASH}.png", timeout=10)
    assert icon.status_code == 200
    assert (lookups(emulator), len(cdn_calls(emulator))) == (1, 1)


def test_unknown_and_bad_requests_are_cards_too(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api()
    unknown = requests.get(f"{run.url}/invites/no-such-card/card.svg", timeout=10)
    assert unknown.status_code == 200
    assert b"Invalid invite" in unknown.content
    assert unknown.headers["Cache-Control"].startswith("public, max-age=")
    bad_theme = requests.get(f"{run.url}/invites/no-such-card/card.svg?theme=blue", timeout=10)
    assert bad_theme.status_code == 400
    assert b"Invalid theme" in bad_theme.content
    assert bad_theme.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
    not_a_code = requests.get(f"{run.url}/invites/a.b/card.svg", timeout=10)
    assert not_a_code.status_code == 400
    assert b"Invalid request" in not_a_code.content
    emulator.state.inject(Fault(status=503, body='{"message": "x", "code": 130000}', times=10))
    down = requests.get(f"{run.url}/invites/some-card/card.svg", timeout=20)
    assert down.status_code == 200
    assert b"Invite unavailable" in down.content
    assert down.headers["Cache-Control"] == "no-store"
    for answer in (unknown, bad_theme, not_a_code, down):
        ET.fromstring(answer.content)  # noqa: S314 (the proxy under test wrote it)
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'; img-src data:"


def test_a_card_whose_icon_cannot_be_had_is_drawn_with_initials_and_kept_less(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("Broken Icon Club", icon=HASH)
    emulator.state.add_invite(guild, code="card-2")
    emulator.state.inject(Fault(status=503, body="busy", route=CDN_ROUTE, times=5))
    run = start_api(CACHE_FRESH_SECONDS="300")
    answer = requests.get(f"{run.url}/invites/card-2/card.svg", timeout=10)
    assert answer.status_code == 200
    assert b"<image" not in answer.content
    assert b"BIC" in answer.content
    assert answer.headers["Cache-Control"] == "public, max-age=60"  # tried again soon
    for _ in range(5):  # the failure is held: no second fetch within the minute
        requests.get(f"{run.url}/invites/card-2/card.svg", timeout=10)
    assert len(cdn_calls(emulator)) == 1


def test_a_guilds_card_is_its_lasting_invites(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="card-guild-1", uses=9)
    run = start_api(ALLOWED_GUILD_IDS=guild.id)
    card = requests.get(f"{run.url}/guilds/{guild.id}/card.svg", timeout=10)
    assert card.status_code == 200
    assert guild.name.encode() in card.content
    other = requests.get(f"{run.url}/guilds/{int(guild.id) + 1}/card.svg", timeout=10)
    assert other.status_code == 200
    assert b"Invalid invite" in other.content
    assert other.headers["Cache-Control"] == "no-store"


def test_the_icon_route_serves_the_icon_the_invite_shows_immutable(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("Icons", icon="a_" + HASH)
    emulator.state.add_invite(guild, code="icon-1")
    run = start_api()
    still = requests.get(f"{run.url}/invites/icon-1/icons/a_{HASH}.png", timeout=10)
    assert still.status_code == 200
    assert still.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert still.headers["Content-Type"] == "image/png"
    assert still.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert still.headers["X-Content-Type-Options"] == "nosniff"
    moving = requests.get(f"{run.url}/invites/icon-1/icons/a_{HASH}.gif", timeout=10)
    assert moving.status_code == 200
    assert moving.content.startswith(b"GIF89a")
    assert moving.headers["Content-Type"] == "image/gif"
    again = requests.get(f"{run.url}/invites/icon-1/icons/a_{HASH}.png", timeout=10)
    assert again.content == still.content
    assert cdn_calls(emulator) == [
        f"/icons/{guild.id}/a_{HASH}.png",
        f"/icons/{guild.id}/a_{HASH}.gif",
    ]
    # The guild's new icon is a new hash: the old one is no longer served.
    guild.icon = "0" * 32
    emulator.state.add_invite(guild, code="icon-2")
    old = requests.get(f"{run.url}/invites/icon-2/icons/a_{HASH}.png", timeout=10)
    assert old.status_code == 404
    assert old.json()["error"]["code"] == "unknown_icon"
    new = requests.get(f"{run.url}/invites/icon-2/icons/{'0' * 32}.png", timeout=10)
    assert new.status_code == 200


def test_a_flood_of_made_up_icons_costs_no_fetch_and_no_more_than_the_lookups_share(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    """A stranger naming guilds and hashes of their own choosing: the proxy relays no
    icon it was not shown, and random codes spend the caller's one share of lookups."""
    guild = emulator.state.add_guild("Flooded", icon=HASH)
    emulator.state.add_invite(guild, code="icon-flood")
    run = start_api(LOOKUP_SHARE_PER_CALLER="3")
    session = requests.Session()
    statuses: dict[int, int] = {}
    for n in range(150):
        if n % 3 == 0:  # the real invite, any other hash
            path = f"/invites/icon-flood/icons/{secrets.token_hex(16)}.png"
        elif n % 3 == 1:  # a made-up code
            path = f"/invites/f{secrets.token_hex(6)}/icons/{HASH}.png"
        else:  # not even an icon file: refused before any lookup
            path = f"/invites/icon-flood/icons/{secrets.token_hex(16)}.svg"
        status = session.get(run.url + path, timeout=10).status_code
        statuses[status] = statuses.get(status, 0) + 1
    assert cdn_calls(emulator) == []
    assert lookups(emulator) <= 1 + 3  # the real invite once, the share for made-up codes
    assert set(statuses) <= {400, 404, 429}
    assert statuses.get(429, 0) >= 40  # made-up codes past the share


def test_a_flood_of_made_up_codes_as_image_cards_spends_the_callers_one_share(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    """An <img> is as good a way to ask as any: each made-up code is a miss, charged to
    the address that asked, and past its share a card that says "unavailable"."""
    run = start_api(LOOKUP_SHARE_PER_CALLER="3")
    session = requests.Session()
    answers = [
        session.get(f"{run.url}/invites/f{secrets.token_hex(6)}/card.svg", timeout=10)
        for _ in range(30)
    ]
    assert lookups(emulator) == 3
    assert {answer.status_code for answer in answers} == {200}
    refused = [a for a in answers if b"Invite unavailable" in a.content]
    assert len(refused) == 27
    assert all(a.headers["Cache-Control"] == "no-store" for a in refused)
