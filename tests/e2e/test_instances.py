"""The local run's instances (invite_proxy_local/instances.py): each request on an idle
instance, each instance a process of its own, new ones started cold up to the limit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from discord_emulator import DiscordEmulator
from invite_proxy_local.instances import InstancePool
from invite_proxy_local.runner import LocalRun

ROUTE = "GET /invites/{code}"


def pool_of(run: LocalRun) -> InstancePool:
    pool = run.gateway.environments["ApiFunction"]
    assert isinstance(pool, InstancePool)
    return pool


def test_requests_run_at_once_on_instances_started_cold_up_to_the_limit(
    start_api: Callable[..., LocalRun],
    emulator: DiscordEmulator,
    capfd: pytest.CaptureFixture[str],
) -> None:
    guild = emulator.state.add_guild("Pool")
    codes = [f"pool-{n}" for n in range(6)]
    for code in codes:
        emulator.state.add_invite(guild, code=code)
    run = start_api(LOCAL_MAX_INSTANCES="3")
    pool = pool_of(run)
    emulator.state.latency = 1.0  # each miss holds its instance a second

    def get(code: str) -> int:
        return requests.get(f"{run.url}/invites/{code}", timeout=30).status_code

    with ThreadPoolExecutor(6) as threads:
        assert list(threads.map(get, codes[:3])) == [200] * 3  # three at once: three started
    assert (pool.instances, pool.cold_starts) == (3, 3)
    started = time.monotonic()
    with ThreadPoolExecutor(6) as threads:
        assert list(threads.map(get, codes[3:])) == [200] * 3
    assert time.monotonic() - started < 2.0  # at once, on warm instances: not one by one
    assert pool.cold_starts == 3  # no more than the limit, and none needed
    logs = [
        json.loads(line) for line in capfd.readouterr().out.splitlines() if '"cold_start"' in line
    ]
    cold = [line for line in logs if line.get("cold_start") is True]
    assert len(cold) == 3  # each instance's first request, and only those
    assert len({line["function_request_id"] for line in logs}) == 6


def test_more_requests_than_instances_wait_for_one_to_be_idle(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("Queue")
    for n in range(4):
        emulator.state.add_invite(guild, code=f"queue-{n}")
    run = start_api(LOCAL_MAX_INSTANCES="2")
    emulator.state.latency = 0.5
    with ThreadPoolExecutor(4) as threads:
        statuses = list(
            threads.map(
                lambda n: requests.get(f"{run.url}/invites/queue-{n}", timeout=30).status_code,
                range(4),
            )
        )
    assert statuses == [200] * 4
    assert pool_of(run).cold_starts == 2


def test_misses_of_one_code_on_several_instances_make_one_upstream_call(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    emulator.state.add_invite(emulator.state.add_guild("Coalesce"), code="co-1")
    run = start_api(LOCAL_MAX_INSTANCES="3")
    with ThreadPoolExecutor(3) as threads:  # warm three instances first
        list(
            threads.map(lambda _: requests.get(f"{run.url}/invites/none-{_}", timeout=30), range(3))
        )
    emulator.state.latency = 0.5
    before = len(emulator.state.requests_to(ROUTE))
    with ThreadPoolExecutor(6) as threads:
        answers = list(
            threads.map(lambda _: requests.get(f"{run.url}/invites/co-1", timeout=30), range(6))
        )
    assert [a.status_code for a in answers] == [200] * 6
    assert len(emulator.state.requests_to(ROUTE)) - before == 1  # through the table's lease


def test_an_instance_that_died_is_replaced_by_a_cold_one(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    emulator.state.add_invite(emulator.state.add_guild("Phoenix"), code="phoenix-1")
    run = start_api(LOCAL_MAX_INSTANCES="1")
    pool = pool_of(run)
    assert requests.get(f"{run.url}/invites/phoenix-1", timeout=30).status_code == 200
    [instance] = pool._idle
    instance.process.kill()
    instance.process.wait()
    assert requests.get(f"{run.url}/invites/phoenix-1", timeout=30).status_code == 200
    assert (pool.instances, pool.cold_starts) == (1, 2)
