"""Discord's own client libraries, pointed at the proxy's Discord-compatible face.

`GET /api/v10/invites/{code}` answers as Discord does, so a library resolves
invites through the proxy with no token: the invite, Discord's 10006 for an
unknown code, and Discord's 429 (the library's own rate-limit handling) when
the proxy says "not now".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import discord
import hikari
import pytest
import requests

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
from invite_proxy_local.runner import LocalRun
from tests.conftest import BOT_TOKEN


async def _hikari_fetch(base: str, code: str, *, max_rate_limit: float = 300) -> hikari.Invite:
    app = hikari.RESTApp(url=base, max_rate_limit=max_rate_limit)
    await app.start()
    try:
        async with app.acquire(None) as rest:
            return await rest.fetch_invite(code, with_counts=True)
    finally:
        await app.close()


def test_hikari_resolves_an_invite_through_the_proxy_with_no_token(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="lib-hikari-1")
    run = start_api()
    invite = asyncio.run(_hikari_fetch(f"{run.url}/api/v10", "lib-hikari-1"))
    assert invite.code == "lib-hikari-1"
    assert invite.guild_id == int(guild.id)
    assert invite.approximate_member_count == guild.member_count
    # Served as the proxy serves every lookup: the second is a cache hit, no call to Discord.
    asyncio.run(_hikari_fetch(f"{run.url}/api/v10", "lib-hikari-1"))
    assert len(emulator.state.requests_to("GET /invites/{code}")) == 1


def test_an_unknown_invite_is_the_librarys_not_found_with_discords_10006(
    start_api: Callable[..., LocalRun],
) -> None:
    run = start_api()
    with pytest.raises(hikari.NotFoundError) as caught:
        asyncio.run(_hikari_fetch(f"{run.url}/api/v10", "no-such-invite"))
    assert caught.value.code == 10006
    with pytest.raises(hikari.NotFoundError) as not_a_code:
        asyncio.run(_hikari_fetch(f"{run.url}/api/v10", "not.a.code"))
    assert not_a_code.value.code == 10006


def test_a_spent_share_is_the_librarys_own_rate_limit_error(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    for code in ("lib-rl-1", "lib-rl-2"):
        emulator.state.add_invite(guild, code=code)
    run = start_api(LOOKUP_SHARE_PER_CALLER="1")
    asyncio.run(_hikari_fetch(f"{run.url}/api/v10", "lib-rl-1"))
    with pytest.raises(hikari.RateLimitTooLongError) as caught:
        asyncio.run(_hikari_fetch(f"{run.url}/api/v10", "lib-rl-2", max_rate_limit=5))
    assert caught.value.retry_after > 5  # one lookup back in 600 s: longer than it waits
    raw = requests.get(f"{run.url}/api/v10/invites/lib-rl-2", timeout=10)
    body = raw.json()
    assert (raw.status_code, body["global"], raw.headers["Via"]) == (429, False, "1.1 invite-proxy")
    assert body["retry_after"] > 5
    assert int(raw.headers["Retry-After"]) >= body["retry_after"]


def test_a_bad_query_is_discords_invalid_form_body(start_api: Callable[..., LocalRun]) -> None:
    run = start_api()
    answer = requests.get(
        f"{run.url}/api/v10/invites/lib-any-1",
        params={"with_counts": "maybe", "guild_scheduled_event_id": "x1"},
        timeout=10,
    )
    body = answer.json()
    assert (answer.status_code, body["code"], body["message"]) == (400, 50035, "Invalid Form Body")
    assert body["errors"]["with_counts"]["_errors"][0]["code"] == "BOOLEAN_TYPE_COERCE"
    assert body["errors"]["guild_scheduled_event_id"]["_errors"][0]["code"] == "NUMBER_TYPE_COERCE"


async def _discord_py_fetch(discord_base: str, proxy_base: str, code: str) -> discord.Invite:
    """A discord.py bot, logged in to Discord, looking invites up through the proxy.

    discord.py has no base-URL option and makes no call before its login (which reads
    the bot's own user with its token), so this is how a bot uses the proxy: it logs in
    to Discord, then sends its invite lookups to the proxy's base URL.
    """
    client = discord.Client(intents=discord.Intents.none(), max_ratelimit_timeout=30)
    original = discord.http.Route.BASE
    try:
        discord.http.Route.BASE = discord_base
        await client.login(BOT_TOKEN)
        discord.http.Route.BASE = proxy_base
        return await client.fetch_invite(code)
    finally:
        discord.http.Route.BASE = original
        await client.close()


def test_discord_py_resolves_an_invite_through_the_proxy(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    for code in ("lib-dpy-1", "lib-dpy-2"):
        emulator.state.add_invite(guild, code=code)
    run = start_api(LOOKUP_SHARE_PER_CALLER="2")
    proxy = f"{run.url}/api/v10"
    invite = asyncio.run(_discord_py_fetch(emulator.base_url, proxy, "lib-dpy-1"))
    assert (invite.code, invite.approximate_member_count) == ("lib-dpy-1", guild.member_count)
    with pytest.raises(discord.NotFound) as unknown:
        asyncio.run(_discord_py_fetch(emulator.base_url, proxy, "no-such-invite"))
    assert unknown.value.code == 10006
    # The caller's share (2) is spent: the 429 says 300 s, longer than the bot waits, and
    # discord.py raises its own RateLimited (a 429 without Via would be its HTTPException).
    with pytest.raises(discord.RateLimited) as limited:
        asyncio.run(_discord_py_fetch(emulator.base_url, proxy, "lib-dpy-2"))
    assert limited.value.retry_after > 30
    asked = [r.route for r in emulator.state.requests]
    assert asked.count("GET /invites/{code}") == 2  # the first and the unknown, via the proxy
