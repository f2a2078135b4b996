"""Each request kind's handler time, through the real API handler: what Lambda bills.

One instance (the handler loaded as Lambda loads it) over a moto server in a process of
its own and the Discord emulator, Lambda's context made before the clock starts. Each
kind is timed HANDLER_ROUNDS times and its median kept:

* ``handler_ms_memory_hit``: a hit the instance's memory answers (no table call);
* ``handler_ms_hit``: a hit read from the table (the in-memory tier off);
* ``handler_ms_miss``: a lookup of an invite not cached, one Discord call;
* ``handler_ms_refused_miss``: a miss past its caller's share (no Discord call);
* ``handler_ms_delete``: an admin DELETE, the eviction included.

Discord here is the local emulator, a millisecond away; Discord's own latency (tens of
milliseconds) comes on top of a miss and a DELETE on AWS.

The same requests' DynamoDB calls are counted, each kind's mean per request:
``table_calls_per_<kind>`` (the worst case of each is held in tests/e2e/test_table_calls.py).
A flood's refused misses after the first on an instance cost no claim: the mean says so.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.results import record
from discord_emulator import DiscordEmulator
from discord_emulator.state import EmulatorState
from invite_proxy.adapters.dynamodb.calls import TableCalls
from invite_proxy_local.dynamodb import ensure_table, start_moto_process
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template

ROUNDS = int(os.environ.get("HANDLER_ROUNDS", "50"))
EVENTS = Path(__file__).resolve().parents[1] / "events"


def _event(name: str, code: str, source: str = "203.0.113.10") -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/invites/{code}"
    event["pathParameters"] = {"code": code}
    event["requestContext"]["http"]["sourceIp"] = source
    return event


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[DiscordEmulator, Callable[..., ExecutionEnvironment]]]:
    saved = dict(os.environ)
    stop_moto, endpoint = start_moto_process()
    emulator = DiscordEmulator(EmulatorState()).start()
    emulator.state.rate_limit = 10_000  # the bucket never waits: the handler's own time
    table = f"handler-{uuid.uuid4().hex[:8]}"
    template = Template()
    ensure_table(template, table, endpoint)
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        CACHE_TABLE_NAME=table,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN="bench-bot",
        POWERTOOLS_LOG_LEVEL="WARNING",
        LOOKUP_BUDGET_PER_10_MINUTES="30000",
    )

    def environment(**env: str) -> ExecutionEnvironment:
        os.environ.update(env)
        return ExecutionEnvironment(template.functions()["ApiFunction"])

    yield emulator, environment
    emulator.stop()
    stop_moto()
    os.environ.clear()
    os.environ.update(saved)


class _Calls:
    """Every DynamoDB call the handlers make in this process, counted where they all pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made = 0
        send = TableCalls._send

        def counted(calls: TableCalls, what: str, *args: Any, **kwargs: Any) -> Any:
            self.made += 1
            return send(calls, what, *args, **kwargs)

        monkeypatch.setattr(TableCalls, "_send", counted)


def _median_ms(environment: ExecutionEnvironment, events: list[dict[str, Any]]) -> float:
    function = environment.function
    contexts = [
        LambdaContext(function.logical_id, function.memory, function.timeout) for _ in events
    ]
    times = []
    for event, context in zip(events, contexts, strict=True):
        started = time.perf_counter()
        environment.invoke(event, context)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def test_each_request_kinds_handler_time(
    benchmark: Any,
    world: tuple[DiscordEmulator, Callable[..., ExecutionEnvironment]],
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, environment = world
    table_calls = _Calls(monkeypatch)
    guild = emulator.state.add_guild("Timed")
    codes = [f"timed-{n:03}" for n in range(2 * ROUNDS)]
    for code in codes:
        emulator.state.add_invite(guild, code=code)
    figures: dict[str, float] = {}
    calls: dict[str, float] = {}

    def kind(name: str, environment: ExecutionEnvironment, events: list[dict[str, Any]]) -> None:
        before = table_calls.made
        figures[name] = _median_ms(environment, events)
        calls[name] = (table_calls.made - before) / len(events)

    def measure() -> None:
        api = environment(MEMORY_CACHE_SECONDS="1", LOOKUP_SHARE_PER_CALLER="0")
        kind("miss", api, [_event("get_invite.json", c) for c in codes[:ROUNDS]])
        hot = [_event("get_invite.json", codes[0]) for _ in range(ROUNDS)]
        kind("memory_hit", api, hot)
        table = environment(MEMORY_CACHE_SECONDS="0")
        kind("hit", table, hot)
        kind("delete", api, [_event("delete_invite.json", c) for c in codes[:ROUNDS]])
        shared = environment(MEMORY_CACHE_SECONDS="1", LOOKUP_SHARE_PER_CALLER="1")
        _median_ms(shared, [_event("get_invite.json", codes[ROUNDS], "198.51.100.7")])  # spent
        refused = [_event("get_invite.json", c, "198.51.100.7") for c in codes[ROUNDS + 1 :]]
        kind("refused_miss", shared, refused)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    capsys.readouterr()
    record(**{f"handler_ms_{kind}": ms for kind, ms in figures.items()})
    record(**{f"table_calls_per_{kind}": n for kind, n in calls.items()})
    with capsys.disabled():
        print("\nhandler time (ms, median):", {k: round(v, 2) for k, v in figures.items()})
        print("table calls per request (mean):", {k: round(v, 2) for k, v in calls.items()})
