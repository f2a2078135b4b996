"""The icon adapters over real HTTP and a real table: Discord's CDN (the emulator's) and
the table's copy of each icon (moto's server)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.server import CDN_ROUTE
from invite_proxy.adapters.discord.cdn import DiscordCdn
from invite_proxy.adapters.dynamodb.calls import TableCalls
from invite_proxy.adapters.dynamodb.icons import DynamoDBIcons
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import IconUnavailable, UnknownIcon
from invite_proxy.domain.icons import ICON_SIZE, MAX_ICON_BYTES, IconFile

HASH = "5f4dcc3b5aa765d61d8327deb882cf99"


@pytest.fixture
def cdn(emulator: DiscordEmulator) -> DiscordCdn:
    return DiscordCdn(
        base_url=emulator.cdn_url, user_agent="test", connect_timeout=1.0, read_timeout=2.0
    )


def test_an_icon_comes_from_the_cdn_as_a_png_of_one_size_with_no_token(
    cdn: DiscordCdn, emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("G", icon=HASH)
    data = cdn.icon(guild.id, IconFile(HASH, "png"), NO_DEADLINE)
    assert IconFile(HASH, "png").holds(data)
    [asked] = [r for r in emulator.state.requests if r.route == CDN_ROUTE]
    assert asked.path == f"/icons/{guild.id}/{HASH}.png"
    assert asked.query == f"size={ICON_SIZE}"
    assert "authorization" not in asked.headers  # the bot's token never goes to the CDN


def test_the_cdns_404_is_an_unknown_icon_and_its_failures_are_unavailable(
    cdn: DiscordCdn, emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("G", icon=HASH)
    with pytest.raises(UnknownIcon):
        cdn.icon(guild.id, IconFile("0" * 32, "png"), NO_DEADLINE)
    emulator.state.inject(Fault(status=503, body="busy", route=CDN_ROUTE))
    with pytest.raises(IconUnavailable):
        cdn.icon(guild.id, IconFile(HASH, "png"), NO_DEADLINE)
    emulator.state.inject(Fault(delay=3.0, route=CDN_ROUTE))
    started = time.monotonic()
    with pytest.raises(IconUnavailable):
        cdn.icon(guild.id, IconFile(HASH, "png"), Deadline(time.time() + 0.5))
    assert time.monotonic() - started < 1.5  # within the deadline, not the read timeout


def test_a_body_larger_than_an_icon_is_read_no_further_than_the_bound(
    cdn: DiscordCdn, emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("G", icon=HASH)
    huge = "\x89PNG" + "x" * (4 * MAX_ICON_BYTES)
    emulator.state.inject(Fault(status=200, body=huge, content_type="image/png", route=CDN_ROUTE))
    data = cdn.icon(guild.id, IconFile(HASH, "png"), NO_DEADLINE)
    assert MAX_ICON_BYTES < len(data) <= MAX_ICON_BYTES + 16 * 1024
    assert not IconFile(HASH, "png").holds(data)  # the service refuses it


def test_the_table_keeps_an_icon_by_its_hash_until_its_ttl(dynamodb: Any, table_name: str) -> None:
    icons = DynamoDBIcons(dynamodb, table_name, TableCalls())
    now = time.time()
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20  # every byte value survives
    assert icons.get("42", f"{HASH}.png", now, NO_DEADLINE) is None
    icons.put("42", f"{HASH}.png", png, now + 60, NO_DEADLINE)
    assert icons.get("42", f"{HASH}.png", now, NO_DEADLINE) == png
    assert icons.get("42", f"a_{HASH}.png", now, NO_DEADLINE) is None
    assert icons.get("43", f"{HASH}.png", now, NO_DEADLINE) is None
    assert icons.get("42", f"{HASH}.png", now + 61, NO_DEADLINE) is None  # past its ttl
