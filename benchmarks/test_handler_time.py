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
A flood's refused misses after the first on an instance cost a read in the claim's stead.

A rule run is timed too, per invite it revokes (``handler_ms_rule_per_invite``): the
RevokerFunction over a guild of RULE_INVITES invites, paced by the fleet's rate as on AWS
(Lambda bills the pacing); and the AdminAuthorizerFunction, which runs before each DELETE
(``handler_ms_authorizer``).

Then each kind again, metered (benchmarks/capacity.py): the read and write request units
DynamoDB charges, per request (``capacity_<kind>_rru`` and ``_wru``, a rule run's per
invite): what docs/cost.md prices.
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

from benchmarks.capacity import Meter
from benchmarks.results import record
from discord_emulator import DiscordEmulator
from discord_emulator.state import EmulatorState
from invite_proxy.adapters.dynamodb.calls import TableCalls
from invite_proxy.domain.admin_tokens import entry_for
from invite_proxy_local.dynamodb import ensure_table, start_moto_process
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template

ROUNDS = int(os.environ.get("HANDLER_ROUNDS", "50"))
RULE_INVITES = int(os.environ.get("RULE_INVITES", "40"))
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


def _times_ms(environment: ExecutionEnvironment, events: list[dict[str, Any]]) -> list[float]:
    function = environment.function
    contexts = [
        LambdaContext(function.logical_id, function.memory, function.timeout) for _ in events
    ]
    times = []
    for event, context in zip(events, contexts, strict=True):
        started = time.perf_counter()
        environment.invoke(event, context)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _median_ms(environment: ExecutionEnvironment, events: list[dict[str, Any]]) -> float:
    return statistics.median(_times_ms(environment, events))


def _rule(emulator: DiscordEmulator, name: str) -> dict[str, Any]:
    """A rule over a guild of its own, every invite of which it revokes."""
    guild = emulator.state.add_guild(name)
    for n in range(RULE_INVITES):
        emulator.state.add_invite(guild, code=f"{name.lower()}-{n:03}", max_age=86_400)
    return {"name": name.lower(), "guild_id": guild.id, "match": {"older_than_seconds": 0}}


def _revoker() -> ExecutionEnvironment:
    return ExecutionEnvironment(Template().functions()["RevokerFunction"])


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
        before = table_calls.made
        (run_ms,) = _times_ms(_revoker(), [_rule(emulator, "Timed-rule")])
        figures["rule_per_invite"] = run_ms / RULE_INVITES
        calls["rule_per_invite"] = (table_calls.made - before) / RULE_INVITES
        # The admin authorizer, which API Gateway runs before each DELETE (no table call).
        token = "dip_bench-admin-token-000000000000000000000000000000"
        os.environ["ADMIN_TOKENS"] = json.dumps({"tokens": [entry_for("bench", token)]})
        authorize = json.loads((EVENTS / "authorize_admin.json").read_text())
        authorize["headers"]["authorization"] = authorize["identitySource"][0] = f"Bearer {token}"
        authorizer = ExecutionEnvironment(Template().functions()["AdminAuthorizerFunction"])
        figures["authorizer"] = _median_ms(authorizer, [authorize] * ROUNDS)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    capsys.readouterr()
    record(**{f"handler_ms_{kind}": ms for kind, ms in figures.items()})
    record(**{f"table_calls_per_{kind}": n for kind, n in calls.items()})
    with capsys.disabled():
        print("\nhandler time (ms, median):", {k: round(v, 2) for k, v in figures.items()})
        print("table calls per request (mean):", {k: round(v, 2) for k, v in calls.items()})


def test_each_request_kinds_capacity(
    benchmark: Any,
    world: tuple[DiscordEmulator, Callable[..., ExecutionEnvironment]],
    capsys: Any,
) -> None:
    emulator, environment = world
    guild = emulator.state.add_guild("Metered")
    rounds = max(10, ROUNDS // 5)  # the units are the same each time: fewer rounds do
    codes = [f"metered-{n:03}" for n in range(2 * rounds)]
    for code in codes:
        emulator.state.add_invite(guild, code=code)
    meter = Meter()
    units: dict[str, tuple[float, float]] = {}

    def kind(name: str, environment: ExecutionEnvironment, events: list[dict[str, Any]]) -> None:
        meter.taken()
        _times_ms(environment, events)
        taken = meter.taken()
        units[name] = (taken.read / len(events), taken.write / len(events))

    def measure() -> None:
        with meter.metering():
            api = environment(MEMORY_CACHE_SECONDS="1", LOOKUP_SHARE_PER_CALLER="0")
            kind("miss", api, [_event("get_invite.json", c) for c in codes[:rounds]])
            hot = [_event("get_invite.json", codes[0]) for _ in range(rounds)]
            kind("memory_hit", api, hot)
            kind("hit", environment(MEMORY_CACHE_SECONDS="0"), hot)
            kind("delete", api, [_event("delete_invite.json", c) for c in codes[:rounds]])
            shared = environment(MEMORY_CACHE_SECONDS="1", LOOKUP_SHARE_PER_CALLER="1")
            _times_ms(shared, [_event("get_invite.json", codes[rounds], "198.51.100.8")])
            refused = [_event("get_invite.json", c, "198.51.100.8") for c in codes[rounds + 1 :]]
            kind("refused_miss", shared, refused)
            meter.taken()
            _times_ms(_revoker(), [_rule(emulator, "Metered-rule")])
            taken = meter.taken()
            units["rule_per_invite"] = (taken.read / RULE_INVITES, taken.write / RULE_INVITES)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    capsys.readouterr()
    record(**{f"capacity_{kind}_rru": read for kind, (read, _) in units.items()})
    record(**{f"capacity_{kind}_wru": write for kind, (_, write) in units.items()})
    with capsys.disabled():
        shown = {k: (round(r, 2), round(w, 2)) for k, (r, w) in units.items()}
        print("\nrequest units per request (read, write):", shown)
