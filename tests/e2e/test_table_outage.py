"""DynamoDB down: the fleet state is gone, and each instance is still a careful client.

The probe from issue 11: a local run over a DynamoDB that then stops answering,
an emulator bucket of 5 a second, 40 lookups of distinct codes.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.server import INVITES_BUCKET
from discord_emulator.state import Guild
from invite_proxy_local.dynamodb import start_moto_server
from invite_proxy_local.gateway import ExecutionEnvironment
from invite_proxy_local.runner import LocalRun
from invite_proxy_local.template import Template
from tests.conftest import BOT_TOKEN
from tests.e2e.test_deadlines import lookup_event
from tests.stand_ins import Relay

ROUTE = "GET /invites/{code}"
RATE_LIMITED = '{"message": "You are being rate limited.", "retry_after": 30.0, "global": false}'


def test_with_dynamodb_refusing_connections_an_instance_earns_no_429(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    server, endpoint = start_moto_server()
    run = start_api(AWS_ENDPOINT_URL_DYNAMODB=endpoint, CACHE_TABLE_NAME="outage-table")
    server.stop()  # from now on, connections are refused
    emulator.state.rate_limit, emulator.state.rate_window = 5, 1.0
    codes = [f"outage-{n:02}" for n in range(40)]
    for code in codes:
        emulator.state.add_invite(guild, code=code)

    responses = [requests.get(f"{run.url}/invites/{code}", timeout=15) for code in codes]
    answers = Counter(r.status_code for r in responses)

    upstream = Counter(r.status for r in emulator.state.requests_to(ROUTE))
    assert upstream[429] == 0, upstream
    # Lookups still work, each waiting for its turn at this instance's share of the rate,
    # until its share of the lookup budget (200 / 10 instances), or this one caller's share
    # of it (20), is spent; the rest are the proxy's own refusals with Retry-After, never
    # sent to Discord.
    assert answers[200] == upstream[200] >= 4
    refused = {r.json()["error"]["code"] for r in responses if r.status_code != 200}
    assert refused <= {"rate_limited", "lookup_budget_exhausted", "lookup_share_exhausted"}
    assert all("Retry-After" in r.headers for r in responses if r.status_code != 200)


# Three local runs in one process share Powertools' Metrics object, so one may flush what
# another was about to: a test artifact (each Lambda instance has its own process).
@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_with_dynamodb_down_three_instances_each_honour_their_own_429s(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    """Alone, an instance cannot know what the others spent: it may meet one 429 per
    window, and then it sends nothing more into that bucket until the window is over."""
    server, endpoint = start_moto_server()
    runs = [
        start_api(
            AWS_ENDPOINT_URL_DYNAMODB=endpoint,
            CACHE_TABLE_NAME="outage-fleet",
            DISCORD_USER_AGENT_URL=f"https://instance-{n}.example",  # tells them apart
        )
        for n in range(3)
    ]
    server.stop()
    window = 1.0
    emulator.state.rate_limit, emulator.state.rate_window = 5, window
    per_instance = 24
    for n in range(3 * per_instance):
        emulator.state.add_invite(guild, code=f"fleet-out-{n:02}")

    def lookups(n: int) -> None:
        # Paced over about three windows, so each instance meets the bucket again and again.
        for m in range(per_instance):
            requests.get(f"{runs[n].url}/invites/fleet-out-{n * per_instance + m:02}", timeout=15)
            time.sleep(0.125)

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lookups, range(3)))

    starts = emulator.state.window_starts[INVITES_BUCKET]
    sent = emulator.state.requests_to(ROUTE)
    assert len({r.headers["user-agent"] for r in sent}) == 3
    assert len(starts) >= 3  # the bucket's windows came and went while they worked

    def window_of(request: Any) -> float:
        return max(s for s in starts if s <= request.at)

    honoured = 0
    for agent in {r.headers["user-agent"] for r in sent}:
        mine = [r for r in sent if r.headers["user-agent"] == agent]
        # Alone, each may meet at most one 429 per window of the bucket ...
        refusals = Counter(window_of(r) for r in mine if r.status == 429)
        assert max(refusals.values(), default=0) <= 1, (agent, refusals)
        # ... and then sends nothing more into the bucket until that window is over.
        for refused, after in itertools.pairwise(mine):
            if refused.status == 429:
                window_end = window_of(refused) + window
                assert after.at >= window_end - 0.05, (agent, refused.at, after.at, window_end)
                honoured += 1
    assert honoured >= 1  # the rule above was put to the test


def test_when_the_table_comes_back_the_fleet_state_takes_over_again(
    template: Template,
    moto_endpoint: str,
    table_name: str,
    emulator: DiscordEmulator,
    guild: Guild,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An instance that went on alone while the table was down shares the fleet's state
    again once the table answers: it honours a block another instance learned."""
    relay = Relay(moto_endpoint)
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=relay.url,
        CACHE_TABLE_NAME=table_name,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        TABLE_CIRCUIT_SECONDS="0.5",
        UPSTREAM_RETRIES="0",
    )
    for code in ("back-1", "back-2", "back-3"):
        emulator.state.add_invite(guild, code=code)
    first, second = (ExecutionEnvironment(template.functions()["ApiFunction"]) for _ in "ab")
    try:
        relay.cut()
        assert first.invoke(lookup_event("back-1"))["statusCode"] == 200  # from Discord alone
        relay.restore()
        time.sleep(0.6)  # the first instance's breaker half-opens
        emulator.state.inject(Fault(status=429, body=RATE_LIMITED, times=1))
        assert second.invoke(lookup_event("back-2"))["statusCode"] == 429  # kept for the fleet

        held = first.invoke(lookup_event("back-3"))
    finally:
        relay.close()
    assert held["statusCode"] == 429  # the second instance's block, read from the table
    assert [r.path.rsplit("/", 1)[1] for r in emulator.state.requests_to(ROUTE)] == [
        "back-1",
        "back-2",
    ]
    said = [r.getMessage().split(":")[0] for r in caplog.records if r.levelno >= logging.WARNING]
    assert said.count("table circuit open") == 1
    assert said.count("table circuit closed") == 1
