"""The fleet as Lambda runs it: separate processes, each with its own memory.

They share one DynamoDB (a moto server) and one Discord (the emulator), and
nothing else, so whatever they do together they do through DynamoDB.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from discord_emulator import DiscordEmulator, Fault
from tests.conftest import closed_port
from tests.e2e.local_processes import Process, clean_env

ROUTE = "GET /invites/{code}"
Fleet = Callable[..., list[str]]


@pytest.fixture
def start_processes(
    moto_endpoint: str, table_name: str, emulator: DiscordEmulator
) -> Iterator[Callable[..., list[Process]]]:
    processes: list[Process] = []

    def start(size: int, **env: str) -> list[Process]:
        shared = {
            "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
            "CACHE_TABLE_NAME": table_name,
            "DISCORD_API_BASE_URL": emulator.base_url,
        } | env
        started = [Process(clean_env(**shared, PORT=str(closed_port()))) for _ in range(size)]
        processes.extend(started)
        for process in started:
            process.wait_for("CORS:")
        return started

    yield start
    for process in processes:
        process.stop()


@pytest.fixture
def start_fleet(start_processes: Callable[..., list[Process]]) -> Fleet:
    """One local run whose gateway hands each request to an idle instance of up to
    ``size``, each a process of its own: a Lambda fleet. Its URL, once per instance."""

    def start(size: int, **env: str) -> list[str]:
        [run] = start_processes(1, LOCAL_MAX_INSTANCES=str(size), **env)
        return [run.url] * size

    return start


@pytest.fixture
def start_runs(start_processes: Callable[..., list[Process]]) -> Fleet:
    """Separate local runs, one instance each: for a test that must say which instance
    a request reaches."""

    def start(size: int, **env: str) -> list[str]:
        return [run.url for run in start_processes(size, LOCAL_MAX_INSTANCES="1", **env)]

    return start


def test_a_fleet_started_together_over_a_new_table_all_starts(
    moto_endpoint: str, emulator: DiscordEmulator
) -> None:
    """Three local runs race to create the table; every one must come up and serve."""
    table = f"fresh-{uuid.uuid4().hex[:8]}"
    ports = [closed_port() for _ in range(3)]
    env = {
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
        "CACHE_TABLE_NAME": table,
        "DISCORD_API_BASE_URL": emulator.base_url,
    }
    processes = [Process(clean_env(PORT=str(port), **env)) for port in ports]
    try:
        created = [p.wait_for("DynamoDB:") for p in processes]
        for process in processes:
            process.wait_for("CORS:")
        assert sum("(created)" in line for line in created) == 1
        for port in ports:
            response = requests.get(f"http://127.0.0.1:{port}/invites/no-such-1", timeout=10)
            assert response.status_code == 404
    finally:
        for process in processes:
            process.stop()


def upstream_calls_by_code(emulator: DiscordEmulator) -> Counter[str]:
    return Counter(r.path.rsplit("/", 1)[-1] for r in emulator.state.requests_to(ROUTE))


def test_concurrent_misses_make_one_upstream_call_per_code_per_freshness_window(
    start_fleet: Fleet, emulator: DiscordEmulator
) -> None:
    guild = emulator.state.add_guild("Fleet", member_count=10)
    codes = ["co-a", "co-b"]
    for code in codes:
        emulator.state.add_invite(guild, code=code)
    fleet = start_fleet(3, CACHE_FRESH_SECONDS="2")
    emulator.state.latency = 0.5  # so the misses overlap

    def burst() -> list[requests.Response]:
        urls = [f"{base}/invites/{code}" for base in fleet for code in codes for _ in range(2)]
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            return list(pool.map(lambda url: requests.get(url, timeout=15), urls))

    first = burst()
    assert [r.status_code for r in first] == [200] * 12, [
        r.text for r in first if r.status_code != 200
    ]
    assert upstream_calls_by_code(emulator) == {"co-a": 1, "co-b": 1}
    assert Counter(r.headers["X-Cache"] for r in first)["MISS"] == 2

    guild.member_count = 11
    emulator.state.latency = 0.0
    time.sleep(2.1)  # the next freshness window: one refresh per code, however many ask
    emulator.state.latency = 0.5
    second = burst()
    assert [r.status_code for r in second] == [200] * 12
    assert upstream_calls_by_code(emulator) == {"co-a": 2, "co-b": 2}
    assert {r.headers["X-Cache"] for r in second} <= {"MISS", "HIT", "STALE"}


def test_separate_processes_back_off_together(start_runs: Fleet, emulator: DiscordEmulator) -> None:
    guild = emulator.state.add_guild("Fleet")
    for code in ("proc-1", "proc-2"):
        emulator.state.add_invite(guild, code=code)
    first, second = start_runs(2)
    body = '{"message": "You are being rate limited.", "retry_after": 30.0, "global": true}'
    emulator.state.inject(Fault(status=429, body=body, headers={"Retry-After": "30"}))
    assert requests.get(f"{first}/invites/proc-1", timeout=10).status_code == 429
    assert requests.get(f"{second}/invites/proc-2", timeout=10).status_code == 429
    assert len(emulator.state.requests_to(ROUTE)) == 1


def test_the_fleet_honours_the_bucket_headers_and_never_earns_a_429(
    start_fleet: Fleet, emulator: DiscordEmulator
) -> None:
    emulator.state.rate_limit, emulator.state.rate_window = 4, 0.5  # 8 lookups a second
    guild = emulator.state.add_guild("Busy")
    fleet = start_fleet(3, RATE_LIMIT_WAIT_SECONDS="2")
    codes = [[f"rl-{i}-{n}" for n in range(6)] for i in range(len(fleet))]
    for batch in codes:
        for code in batch:
            emulator.state.add_invite(guild, code=code)

    def look_up_all(i: int) -> list[int]:
        return [requests.get(f"{fleet[i]}/invites/{c}", timeout=15).status_code for c in codes[i]]

    with ThreadPoolExecutor(max_workers=len(fleet)) as pool:
        batches = pool.map(look_up_all, range(len(fleet)))
        statuses = [status for batch in batches for status in batch]
    assert statuses == [200] * 18
    answers = [r.status for r in emulator.state.requests_to(ROUTE)]
    assert answers == [200] * 18  # every call fit the bucket: no 429, no retry


def test_a_delete_is_seen_at_once_where_it_was_made_and_within_memorys_lifetime_elsewhere(
    start_runs: Fleet, emulator: DiscordEmulator
) -> None:
    """The in-memory tier's bound, across processes: the instance that revoked forgets the
    code at once; another answers from its memory at most MEMORY_CACHE_SECONDS more."""
    token = "dip_memory-test-token-0000000000000000000000000"
    emulator.state.add_invite(emulator.state.add_guild("G"), code="mem-1")
    lifetime = 2.0
    here, elsewhere = start_runs(2, LOCAL_ADMIN_TOKEN=token, MEMORY_CACHE_SECONDS=str(lifetime))
    assert requests.get(f"{here}/invites/mem-1", timeout=10).status_code == 200
    assert requests.get(f"{elsewhere}/invites/mem-1", timeout=10).status_code == 200
    revoked = requests.delete(
        f"{here}/invites/mem-1", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert revoked.status_code == 200
    revoked_at = time.monotonic()
    assert requests.get(f"{here}/invites/mem-1", timeout=10).status_code == 404  # at once
    answers: list[tuple[float, int]] = []
    while time.monotonic() - revoked_at < lifetime + 1.5:
        status = requests.get(f"{elsewhere}/invites/mem-1", timeout=10).status_code
        answers.append((time.monotonic() - revoked_at, status))
        time.sleep(0.05)
    served = [at for at, status in answers if status == 200]
    gone = [at for at, status in answers if status == 404]
    assert served  # from its memory: the table was not read again
    assert max(served) <= lifetime + 0.1  # the stated bound, and no longer
    assert gone
    assert min(gone) > max(served)  # once gone, gone
    assert {status for _, status in answers} == {200, 404}
