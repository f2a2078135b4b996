"""Guild mode through the local run: lookups answered from the guild's own invite list.

A flood of random codes and random event ids costs Discord a listing per interval,
never a call per code; invites made during the flood are served within seconds; a
DELETE takes a code out at once, and a rule run's listing refreshes the mirror.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
from invite_proxy_local.runner import LocalRun
from tests.e2e.test_caller_shares import get_from

LISTING = "GET /guilds/{guild_id}/invites"
INVITE = "GET /invites/{code}"
INTERVAL = 2  # GUILD_LIST_MIN_REFRESH_SECONDS here: a short test, the same rule


def routes(emulator: DiscordEmulator) -> Counter[str]:
    return Counter(r.route or "" for r in emulator.state.requests)


def guild_mode(start_api: Callable[..., LocalRun], guild: Guild, **env: str) -> LocalRun:
    return start_api(
        ALLOWED_GUILD_IDS=guild.id, GUILD_LIST_MIN_REFRESH_SECONDS=str(INTERVAL), **env
    )


def test_a_flood_costs_a_listing_per_interval_and_new_invites_are_served(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    real = [emulator.state.add_invite(guild, code=f"gm-real-{n}").code for n in range(4)]
    event = emulator.state.add_event(guild, "Launch", scheduled_start_time=time.time() + 3600)
    run = guild_mode(start_api, guild)
    stop = threading.Event()
    flood_answers: Counter[int] = Counter()

    def flood(n: int) -> None:
        while not stop.is_set():
            if n % 2:
                path = f"rand{secrets.token_hex(5)}"
            else:  # random event ids on a real code
                path = f"{real[0]}?guild_scheduled_event_id={secrets.randbelow(10**18)}"
            status, _, _ = get_from("127.0.0.2", run, path)
            flood_answers[status] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        floods = [pool.submit(flood, n) for n in range(4)]
        time.sleep(0.5)
        served: dict[str, tuple[int, float]] = {}
        for n, code in enumerate(real):
            status, _, body = get_from(f"127.0.0.{3 + n}", run, code)
            served[code] = (status, 0.0)
            assert body.get("code") == code
        # An invite made during the flood: its first lookup may find the list just read,
        # and is told for how long (max-age); asked again after that, it is served.
        made = emulator.state.add_invite(guild, code="gm-made-now").code
        made_at = time.monotonic()
        while time.monotonic() - made_at < 3 * INTERVAL:
            status, headers, _ = get_from("127.0.0.9", run, made)
            if status == 200:
                break
            assert status == 404
            time.sleep(int(headers["Cache-Control"].split("max-age=")[1]) + 0.05)
        served[made] = (status, time.monotonic() - made_at)
        with_event = requests.get(
            f"{run.url}/invites/{real[1]}",
            params={"guild_scheduled_event_id": event.id, "with_counts": "true"},
            timeout=10,
        ).json()
        time.sleep(1)
        stop.set()
        for f in floods:
            f.result()
    took = time.monotonic() - started

    assert {code: status for code, (status, _) in served.items()} == dict.fromkeys(served, 200)
    assert served["gm-made-now"][1] <= INTERVAL + 1.5  # within seconds of its creation
    assert with_event["guild_scheduled_event"]["id"] == event.id
    assert with_event["approximate_member_count"] == guild.member_count
    assert sum(flood_answers.values()) > 50
    assert set(flood_answers) <= {200, 404}  # answered, never turned away or failed
    calls = routes(emulator)
    assert calls[INVITE] == 0  # not one code was asked of Discord
    assert calls[LISTING] <= took / INTERVAL + 1
    assert calls["GET /guilds/{guild_id}/scheduled-events"] == 1
    assert all(r.status != 429 for r in emulator.state.requests)


def test_a_delete_takes_the_code_out_at_once_and_a_rule_run_refreshes_the_list(
    start_api: Callable[..., LocalRun],
    revoker: Callable[..., Callable[..., Any]],
    emulator: DiscordEmulator,
    guild: Guild,
) -> None:
    for n in range(3):
        emulator.state.add_invite(guild, code=f"gm-del-{n}")
    run = guild_mode(start_api, guild)
    assert requests.get(f"{run.url}/invites/gm-del-0", timeout=10).status_code == 200
    deleted = requests.delete(
        f"{run.url}/invites/gm-del-0",
        headers={"Authorization": f"Bearer {run.admin_token}"},
        timeout=10,
    )
    assert deleted.status_code == 200
    gone = requests.get(f"{run.url}/invites/gm-del-0", timeout=10)
    assert (gone.status_code, gone.headers["X-Cache"]) == (404, "MISS")

    # A rule run lists the guild: that one listing refreshes the mirror too.
    emulator.state.add_invite(guild, code="gm-by-rule")
    invoke = revoker(ALLOWED_GUILD_IDS=guild.id)
    invoke({"name": "look", "guild_id": guild.id, "match": {"permanent": True}, "dry_run": True})
    listings = routes(emulator)[LISTING]
    time.sleep(INTERVAL + 0.1)  # lists the API read itself would now be due; this one is not
    assert requests.get(f"{run.url}/invites/gm-by-rule", timeout=10).status_code == 200
    assert routes(emulator)[LISTING] == listings
    assert routes(emulator)[INVITE] == 0


def test_a_guild_the_bot_may_not_list_is_looked_up_per_code(
    start_api: Callable[..., LocalRun],
    emulator: DiscordEmulator,
    guild: Guild,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    guild.manage_guild = False  # the bot lacks Manage Server there
    emulator.state.add_invite(guild, code="gm-perm-1")
    emulator.state.add_invite(guild, code="gm-perm-2")
    caplog.set_level(logging.WARNING)
    run = guild_mode(start_api, guild)
    for code in ("gm-perm-1", "gm-perm-2"):
        assert requests.get(f"{run.url}/invites/{code}", timeout=10).status_code == 200
    calls = routes(emulator)
    assert (calls[LISTING], calls[INVITE]) == (1, 2)  # refused once, then per code
    warnings = [r for r in caplog.records if "Manage Server" in r.getMessage()]
    assert len(warnings) == 1
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(b.get("GuildListUnreadable", [0])[0] for b in blobs) == 1


def test_with_the_table_down_an_instance_answers_from_its_own_read_of_the_list(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    from invite_proxy_local.dynamodb import start_moto_server

    server, endpoint = start_moto_server()
    run = guild_mode(
        start_api,
        guild,
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        CACHE_TABLE_NAME="outage-table",
        TABLE_CIRCUIT_SECONDS="60",  # one failure, then the table is skipped: a quick test
    )
    server.stop()  # from now on, connections are refused
    codes = [emulator.state.add_invite(guild, code=f"gm-out-{n}").code for n in range(5)]
    answers = [requests.get(f"{run.url}/invites/{code}", timeout=15) for code in codes]
    answers += [requests.get(f"{run.url}/invites/rnd{n}x", timeout=15) for n in range(20)]
    assert [a.status_code for a in answers] == [200] * 5 + [404] * 20
    calls = routes(emulator)
    assert (calls[INVITE], calls[LISTING]) == (0, 1)  # one read of the list, by the instance


def test_a_guilds_lasting_invite_by_guild_id(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="gm-card-brief", max_age=3600)
    emulator.state.add_invite(guild, code="gm-card-1", uses=2)
    emulator.state.add_invite(guild, code="gm-card-2", uses=9)
    other = emulator.state.add_guild("Not ours")
    run = guild_mode(start_api, guild)
    card = requests.get(f"{run.url}/guilds/{guild.id}/invite?with_counts=true", timeout=10)
    body = card.json()
    assert (card.status_code, body["code"]) == (200, "gm-card-2")  # the most used lasting one
    assert body["approximate_member_count"] == guild.member_count
    assert card.headers["ETag"]
    assert card.headers["Cache-Control"].startswith("public, max-age=")
    theirs = requests.get(f"{run.url}/guilds/{other.id}/invite", timeout=10)
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (404, "unknown_invite")
    bad = requests.get(f"{run.url}/guilds/not-a-guild/invite", timeout=10)
    assert bad.status_code == 400
    assert routes(emulator)[INVITE] == 0  # from the guild's own list


def test_a_flood_on_the_card_badge_and_discord_routes_costs_what_lookups_cost(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    """Guild mode: random guild ids, the guild's own card again and again, and random
    codes on the Discord face and the badge: no call per code or guild, and the lists read
    once per interval at most."""
    emulator.state.add_invite(guild, code="gm-flood-card", uses=5)
    run = guild_mode(start_api, guild)
    paths = []
    for n in range(40):
        paths += [
            f"/guilds/{secrets.randbelow(10**18)}/invite",
            f"/guilds/{secrets.randbelow(10**18)}/badge.json",
            f"/guilds/{guild.id}/invite?with_counts={n % 2}",
            f"/api/v10/invites/rnd{secrets.token_hex(4)}",
            f"/invites/rnd{secrets.token_hex(4)}/badge.json",
        ]
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda p: requests.get(run.url + p, timeout=10), paths))
    took = time.monotonic() - started
    assert all(a.status_code < 500 for a in answers)
    calls = routes(emulator)
    assert calls[INVITE] == 0
    assert calls[LISTING] <= took / INTERVAL + 1


def test_in_open_mode_every_route_spends_the_one_share_of_its_caller(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    run = start_api(LOOKUP_SHARE_PER_CALLER="5")
    paths = []
    for _ in range(10):
        paths += [
            f"/invites/rnd{secrets.token_hex(4)}",
            f"/api/v10/invites/rnd{secrets.token_hex(4)}",
            f"/invites/rnd{secrets.token_hex(4)}/badge.json",
        ]
    for path in paths:
        assert requests.get(run.url + path, timeout=10).status_code in (200, 404, 429)
    assert routes(emulator)[INVITE] == 5  # its share, whichever route asked
