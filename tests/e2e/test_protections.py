"""Never get the bot banned: fleet-wide back-off, budget, retries, the allow-list.

The fleet's state lives in DynamoDB, so separate instances (here: separate local
runs, and separate processes) must see each other's back-off.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import requests

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy.domain.rate_limits import WINDOW_SECONDS
from invite_proxy_local.runner import LocalRun

ROUTE = "GET /invites/{code}"
RATE_LIMITED = '{"message": "You are being rate limited.", "retry_after": 30.0, "global": false}'


def calls(emulator: DiscordEmulator) -> int:
    return len(emulator.state.requests_to(ROUTE))


def admin(run: LocalRun) -> dict[str, str]:
    return {"Authorization": f"Bearer {run.admin_token}"}


def get(run: LocalRun, code: str) -> requests.Response:
    return requests.get(f"{run.url}/invites/{code}", timeout=15)


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500),
        Fault(status=503, body='{"message": "overloaded", "code": 130000}'),
        Fault(reset=True),
        Fault(status=200, body="{}", delay=1.0),  # a read timeout
    ],
)
def test_5xx_resets_and_timeouts_are_retried(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild, fault: Fault
) -> None:
    run = start_api(DISCORD_READ_TIMEOUT="0.5")
    emulator.state.add_invite(guild, code="retry-1")
    emulator.state.inject(fault)
    response = get(run, "retry-1")
    assert response.status_code == 200
    assert response.headers["X-Cache"] == "MISS"
    assert calls(emulator) == 2


def test_retries_are_bounded(start_api: Callable[..., LocalRun], emulator: DiscordEmulator) -> None:
    run = start_api(UPSTREAM_RETRIES="2")
    emulator.state.inject(Fault(status=502, times=10))
    assert get(run, "retry-2").status_code == 502
    assert calls(emulator) == 3


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=400, body='{"message": "Invalid Form Body", "code": 50035}'),
        Fault(status=403, body='{"message": "Missing Access", "code": 50001}'),
        Fault(status=429, body=RATE_LIMITED, headers={"Retry-After": "30"}),
    ],
)
def test_4xx_is_never_retried(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, fault: Fault
) -> None:
    run = start_api()
    emulator.state.inject(fault)
    assert get(run, "retry-3").status_code >= 400
    assert calls(emulator) == 1


def test_no_retry_that_cannot_finish_before_the_deadline(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    # One attempt may take 0.5 + 1.5 s; a 1 s deadline leaves no room for a second.
    run = start_api(DISCORD_READ_TIMEOUT="0.5", LOOKUP_DEADLINE_SECONDS="1")
    emulator.state.inject(Fault(status=500, times=10))
    assert get(run, "retry-4").status_code == 502
    assert calls(emulator) == 1


# -- fleet-wide back-off -------------------------------------------------------------------------


def test_a_429_seen_by_one_instance_stops_the_whole_fleet(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    first, second = start_api(), start_api()  # two instances, one table
    emulator.state.add_invite(guild, code="fleet-1")
    emulator.state.inject(Fault(status=429, body=RATE_LIMITED, headers={"Retry-After": "30"}))
    assert get(first, "fleet-1").status_code == 429
    refused = get(second, "fleet-1")
    assert refused.status_code == 429
    assert 25 <= int(refused.headers["Retry-After"]) <= 30
    assert calls(emulator) == 1  # the second instance never asked


def test_a_cloudflare_block_stops_the_fleet_for_long(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api()
    emulator.state.inject(Fault(status=403, body="<html>banned</html>", content_type="text/html"))
    assert get(run, "cf-1").status_code == 503
    refused = get(start_api(), "cf-2")
    assert refused.json()["error"]["code"] == "upstream_blocked"
    assert int(refused.headers["Retry-After"]) > 500  # CLOUDFLARE_BLOCK_SECONDS, 600
    assert calls(emulator) == 1


def test_the_emulators_global_limit_stops_the_fleet_on_its_first_429(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.global_limit, emulator.state.global_window = 2, 20.0
    first, second = start_api(), start_api()
    for n in range(4):
        emulator.state.add_invite(guild, code=f"glob-{n}")
    assert get(first, "glob-0").status_code == 200
    assert get(second, "glob-1").status_code == 200
    limited = get(first, "glob-2")  # Discord's own global 429
    assert limited.status_code == 429
    assert [r.status for r in emulator.state.requests_to(ROUTE)] == [200, 200, 429]
    refused = get(second, "glob-3")  # the fleet stays away until Discord's reset
    assert refused.status_code == 429
    assert 15 <= int(refused.headers["Retry-After"]) <= 21
    assert calls(emulator) == 3


def test_the_emulators_cloudflare_ban_is_met_with_a_long_silence(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    emulator.state.ban_threshold = 3  # Discord's is 10,000 per 10 minutes
    run = start_api(UPSTREAM_RETRIES="0")
    emulator.state.inject(
        Fault(status=403, body='{"message": "Missing Access", "code": 50001}', times=3)
    )
    for code in ("ban-1", "ban-2", "ban-3"):
        assert get(run, code).status_code == 502  # three invalid answers: banned
    banned = get(run, "ban-4")
    assert (banned.status_code, banned.json()["error"]["code"]) == (503, "upstream_blocked")
    assert emulator.state.requests_to(ROUTE)[-1].status == 403  # the HTML ban page
    refused = get(start_api(), "ban-5")
    assert refused.json()["error"]["code"] == "upstream_blocked"
    assert int(refused.headers["Retry-After"]) > 3000  # the ban's own Retry-After
    assert calls(emulator) == 4


def test_a_401_locks_the_token_for_a_while(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    run = start_api(TOKEN_LOCK_SECONDS="120")
    emulator.state.inject(Fault(status=401, body='{"message": "401: Unauthorized", "code": 0}'))
    for code in ("tok-1", "tok-2", "tok-3"):
        assert get(run, code).json()["error"]["code"] == "upstream_unauthorized"
    assert calls(emulator) == 1  # a revoked token is not hammered


def test_an_empty_bucket_is_waited_out_and_never_earns_a_429(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    # Each window's turn comes a second later: far past RATE_LIMIT_WAIT_SECONDS (0.5), well
    # within a lookup's deadline, so every lookup waits for its turn instead of a 429.
    emulator.state.rate_limit, emulator.state.rate_window = 2, 1.0
    run = start_api()
    for n in range(6):
        emulator.state.add_invite(guild, code=f"bucket-{n}")
        assert get(run, f"bucket-{n}").status_code == 200
    assert calls(emulator) == 6
    assert [r.status for r in emulator.state.requests_to(ROUTE)] == [200] * 6


def test_a_slow_probe_is_waited_for_not_answered_with_a_429(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    first, second = start_api(), start_api()  # RATE_LIMIT_WAIT_SECONDS: 0.5
    for code in ("probe-1", "probe-2"):
        emulator.state.add_invite(guild, code=code)
    emulator.state.latency = 0.8  # the window's first call (its probe) is slow
    probing = in_background(lambda: get(first, "probe-1"))
    wait_for_calls(emulator, 1)
    waited = get(second, "probe-2")  # the bucket is not known empty, only unknown
    assert waited.status_code == 200
    assert probing.result().status_code == 200
    assert [r.status for r in emulator.state.requests_to(ROUTE)] == [200, 200]


def test_a_stale_copy_beats_a_fleet_block(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api(CACHE_FRESH_SECONDS="1")
    emulator.state.add_invite(guild, code="stale-fleet")
    assert get(run, "stale-fleet").status_code == 200
    emulator.state.inject(Fault(status=429, body=RATE_LIMITED, headers={"Retry-After": "30"}))
    assert get(run, "other-code").status_code == 429
    time.sleep(1.1)
    stale = get(run, "stale-fleet")
    assert (stale.status_code, stale.headers["X-Cache"]) == (200, "STALE")
    assert calls(emulator) == 2


# -- request coalescing, stale-while-revalidate --------------------------------------------------


def in_background(call: Callable[[], requests.Response]) -> Future[requests.Response]:
    return ThreadPoolExecutor(max_workers=1).submit(call)


def wait_for_calls(emulator: DiscordEmulator, count: int) -> None:
    deadline = time.monotonic() + 5
    while calls(emulator) < count:
        assert time.monotonic() < deadline, "the emulator never got the call"
        time.sleep(0.01)


def test_a_miss_in_flight_elsewhere_is_waited_for_not_repeated(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    first, second = start_api(), start_api()
    emulator.state.add_invite(guild, code="co-1")
    emulator.state.latency = 0.6
    fetching = in_background(lambda: get(first, "co-1"))
    wait_for_calls(emulator, 1)
    waited = get(second, "co-1")  # the first instance holds the lease, mid-fetch
    assert (waited.status_code, waited.headers["X-Cache"]) == (200, "HIT")
    assert fetching.result().headers["X-Cache"] == "MISS"
    assert waited.content == fetching.result().content
    assert calls(emulator) == 1


def test_stale_counts_are_served_while_one_instance_refreshes(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    # Two seconds of freshness: the refreshed copy must still be fresh at the last read,
    # however slowly a loaded machine gets there.
    first, second = (start_api(CACHE_FRESH_SECONDS="2") for _ in range(2))
    emulator.state.add_invite(guild, code="swr-1")
    assert get(first, "swr-1?with_counts=true").json()["approximate_member_count"] == 42
    guild.member_count = 43
    time.sleep(2.1)
    emulator.state.latency = 0.6
    refreshing = in_background(lambda: get(first, "swr-1?with_counts=true"))
    wait_for_calls(emulator, 2)
    started = time.monotonic()
    stale = get(second, "swr-1?with_counts=true")
    assert time.monotonic() - started < 0.5  # did not wait for the refresh
    assert (stale.headers["X-Cache"], stale.json()["approximate_member_count"]) == ("STALE", 42)
    refreshed = refreshing.result()
    assert (refreshed.headers["X-Cache"], refreshed.json()["approximate_member_count"]) == (
        "MISS",
        43,
    )
    assert get(second, "swr-1?with_counts=true").json()["approximate_member_count"] == 43
    assert calls(emulator) == 2


def test_stale_while_revalidate_has_its_own_bound(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    env = {"CACHE_FRESH_SECONDS": "2", "STALE_WHILE_REVALIDATE_SECONDS": "0"}
    first, second = start_api(**env), start_api(**env)
    emulator.state.add_invite(guild, code="swr-2")
    get(first, "swr-2")
    time.sleep(2.1)
    emulator.state.latency = 0.6
    refreshing = in_background(lambda: get(first, "swr-2"))
    wait_for_calls(emulator, 2)
    waited = get(second, "swr-2")  # past the bound: it waits for the refresh instead
    assert waited.headers["X-Cache"] == "HIT"
    assert refreshing.result().headers["X-Cache"] == "MISS"
    assert calls(emulator) == 2


def test_a_crashed_holders_lease_runs_out(
    start_api: Callable[..., LocalRun],
    emulator: DiscordEmulator,
    guild: Guild,
    dynamodb: Any,
    table_name: str,
) -> None:
    run = start_api(COALESCE_WAIT_SECONDS="0.3")
    emulator.state.add_invite(guild, code="crash-1")
    dynamodb.put_item(  # what an instance that died mid-fetch leaves behind
        TableName=table_name,
        Item={
            "pk": {"S": "invite#crash-1"},
            "sk": {"S": "lease#counts=0#event=-"},
            "owner": {"S": "crashed"},
            "lease_until": {"N": repr(time.time() + 1.5)},
        },
    )
    busy = get(run, "crash-1")
    assert busy.status_code == 503
    assert busy.json()["error"]["code"] == "lookup_in_progress"
    assert 1 <= int(busy.headers["Retry-After"]) <= 2
    assert calls(emulator) == 0
    time.sleep(1.6)
    assert get(run, "crash-1").headers["X-Cache"] == "MISS"
    assert calls(emulator) == 1


def test_a_failed_fetch_is_shared_for_a_moment_not_repeated(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    env = {"UPSTREAM_RETRIES": "0", "LOOKUP_FAILURE_HOLD_SECONDS": "1"}
    first, second = start_api(**env), start_api(**env)
    emulator.state.inject(Fault(status=500, times=5))
    assert get(first, "fail-1").status_code == 502
    shared = get(second, "fail-1")
    assert shared.status_code == 503
    assert shared.json()["error"]["code"] == "lookup_recently_failed"
    assert calls(emulator) == 1
    time.sleep(1.1)  # the failure is held 1 s; then the next lookup tries Discord again
    assert get(second, "fail-1").status_code == 502
    assert calls(emulator) == 2


def test_a_failure_is_held_from_when_it_failed_not_from_when_the_fetch_began(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    env = {
        "UPSTREAM_RETRIES": "0",
        "DISCORD_READ_TIMEOUT": "1",
        "LOOKUP_FAILURE_HOLD_SECONDS": "0.8",
    }
    first, second = start_api(**env), start_api(**env)
    emulator.state.inject(Fault(status=200, body="{}", delay=1.5))  # longer than the hold
    assert get(first, "slow-fail").status_code == 504
    shared = get(second, "slow-fail")
    assert shared.json()["error"]["code"] == "lookup_recently_failed"
    assert calls(emulator) == 1


# -- revocations under the same guard --------------------------------------------------------------


def test_a_delete_waits_for_a_fleet_block_like_a_lookup(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api()
    emulator.state.add_invite(guild, code="del-guard-1")
    body = '{"message": "You are being rate limited.", "retry_after": 30.0, "global": true}'
    emulator.state.inject(Fault(status=429, body=body, headers={"Retry-After": "30"}))
    assert get(run, "other-1").status_code == 429  # a lookup meets a global 429
    refused = requests.delete(f"{run.url}/invites/del-guard-1", headers=admin(run), timeout=10)
    assert refused.status_code == 429
    assert 25 <= int(refused.headers["Retry-After"]) <= 30
    assert emulator.state.requests_to("DELETE /invites/{code}") == []
    assert emulator.state.find_invite("del-guard-1") is not None


def test_a_delete_that_meets_a_401_locks_the_token_for_lookups_too(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    run = start_api(TOKEN_LOCK_SECONDS="120")
    emulator.state.inject(
        Fault(status=401, body='{"message": "401: Unauthorized", "code": 0}', route=None)
    )
    deleted = requests.delete(f"{run.url}/invites/tok-del", headers=admin(run), timeout=10)
    assert deleted.status_code == 502
    refused = get(run, "tok-lookup")
    assert refused.json()["error"]["code"] == "upstream_unauthorized"
    assert calls(emulator) == 0  # the lookup never went


def test_a_delete_429_holds_deletes_back_but_not_lookups(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api()
    for code in ("del-rl-1", "del-rl-2", "look-rl-1"):
        emulator.state.add_invite(guild, code=code)
    emulator.state.inject(
        Fault(
            status=429,
            body=RATE_LIMITED,
            headers={"Retry-After": "30"},
            route="DELETE /invites/{code}",
        )
    )
    assert (
        requests.delete(f"{run.url}/invites/del-rl-1", headers=admin(run), timeout=10).status_code
        == 429
    )
    second = requests.delete(f"{run.url}/invites/del-rl-2", headers=admin(run), timeout=10)
    assert second.status_code == 429  # refused here: the delete bucket is blocked
    assert len(emulator.state.requests_to("DELETE /invites/{code}")) == 1
    assert get(run, "look-rl-1").status_code == 200  # another bucket: lookups go on


def test_a_lookup_refused_by_the_budget_holds_no_bucket_request(
    start_api: Callable[..., LocalRun],
    revoker: Callable[..., Callable[..., Any]],
    emulator: DiscordEmulator,
    guild: Guild,
) -> None:
    start_inside_one_window()
    run = start_api(LOOKUP_BUDGET_PER_10_MINUTES="1")
    for code in ("bud-ok", "bud-over", "bud-revoke"):
        emulator.state.add_invite(guild, code=code)
    assert get(run, "bud-ok").status_code == 200
    time.sleep(1.1)  # the bucket's window is over: the next call in it would be the probe
    assert get(run, "bud-over").json()["error"]["code"] == "lookup_budget_exhausted"
    # The revoker's own check of a named code uses the same bucket, and is not held up.
    summary = revoker()({"name": "after-budget", "codes": ["bud-revoke"]})
    assert summary["revoked"] == 1


# -- the budget, the invalid-response count -------------------------------------------------------


def start_inside_one_window(needed: float = 15.0) -> None:
    """Counters are per 10-minute window: a test that counts must not straddle two."""
    into = time.time() % WINDOW_SECONDS
    if into > WINDOW_SECONDS - needed:
        time.sleep(WINDOW_SECONDS - into + 0.05)


def test_the_lookup_budget_is_fleet_wide(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    start_inside_one_window()
    first = start_api(LOOKUP_BUDGET_PER_10_MINUTES="2")
    second = start_api(LOOKUP_BUDGET_PER_10_MINUTES="2")
    for code in ("b-1", "b-2", "b-3"):
        emulator.state.add_invite(guild, code=code)
    assert get(first, "b-1").status_code == 200
    assert get(second, "b-2").status_code == 200
    over = get(first, "b-3")
    assert over.status_code == 503
    assert over.json()["error"]["code"] == "lookup_budget_exhausted"
    assert 0 < int(over.headers["Retry-After"]) <= 600
    assert calls(emulator) == 2
    assert get(second, "b-1").headers["X-Cache"] == "HIT"  # the cache still serves


def test_invalid_responses_are_counted_and_warned_about_early(
    start_api: Callable[..., LocalRun],
    emulator: DiscordEmulator,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    start_inside_one_window()
    run = start_api(INVALID_WARN_THRESHOLD="2")
    missing_access = Fault(status=403, body='{"message": "Missing Access", "code": 50001}', times=3)
    emulator.state.inject(missing_access)
    caplog.set_level(logging.INFO)
    for code in ("inv-1", "inv-2", "inv-3"):
        get(run, code)
    warnings = [r for r in caplog.records if "ban threshold" in r.getMessage()]
    assert [w.invalid_in_window for w in warnings] == [2, 3]  # type: ignore[attr-defined]
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert sum(b.get("InvalidResponse", [0])[0] for b in blobs) == 3


# -- the guild allow-list ----------------------------------------------------------------------


def test_only_allowed_guilds_resolve(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    other = emulator.state.add_guild("Not ours")
    emulator.state.add_invite(guild, code="ours-1")
    emulator.state.add_invite(other, code="theirs-1")
    run = start_api(ALLOWED_GUILD_IDS=guild.id)
    assert get(run, "ours-1").status_code == 200
    refused = get(run, "theirs-1")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "unknown_invite"
    # Answered from the guild's list, read once (with the guild, for its vanity code and
    # counts): no code was asked of Discord, and the 404 lasts only until the next read.
    assert int(refused.headers["Cache-Control"].split("max-age=")[1]) <= 10
    assert [r.route for r in emulator.state.requests] == [
        "GET /guilds/{guild_id}/invites",
        "GET /guilds/{guild_id}",
    ]
