"""Guild mode under a flood: Discord's calls stay within the stated bound, whatever is tried.

Local API processes (each one request at a time, as a Lambda instance) over one moto
server and the emulator, in guild mode (one allowed guild of GUILD_INVITES invites,
the largest Discord allows; a vanity code; scheduled events). One caller sends, at
FLOOD_RATE a second for FLOOD_SECONDS, random valid-looking codes and random event
ids on a real code; meanwhile other callers, each from an address of its own, look
up real invites that are not cached, and invites made during the flood (asked again
as their 404's max-age says, as a browser would, until served).

Keys: guild_flood_legit_success_ratio (at least 0.99), guild_flood_new_invite_seconds
(the slowest time from an invite's creation to its first 200, within seconds),
guild_flood_upstream_ratio (Discord calls during the flood over the stated bound,
docs/protections.md: at most 1.0), answer times p50/p99 for the flood and the others,
and what a refresh of a 1,000-invite list costs (guild_refresh_1000_ms: the first,
every invite written; guild_refresh_1000_unchanged_ms: one invite changed).
"""

from __future__ import annotations

import os
import secrets
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.local_fleet import LocalFleet, during_a_flood, local_fleet, percentile
from benchmarks.results import add, record
from invite_proxy.adapters.dynamodb.guild_mirror import DynamoDBGuildMirror
from invite_proxy.domain.guild_mirror import mirrored

SECONDS = float(os.environ.get("FLOOD_SECONDS", "60"))
RATE = float(os.environ.get("FLOOD_RATE", "10"))
INSTANCES = int(os.environ.get("FLOOD_INSTANCES", "3"))
GUILD_INVITES = int(os.environ.get("GUILD_INVITES", "1000"))
CALLERS = 12
GUILD_ID = "900000000000000001"
# GUILD_LIST_MIN_REFRESH_SECONDS and CACHE_FRESH_SECONDS: the defaults.
INTERVAL = float(os.environ.get("GUILD_FLOOD_INTERVAL", "10"))
WINDOW = 60.0
FLOODER = "127.0.0.2"


def bound(seconds: float) -> float:
    """The stated bound on one guild's calls in ``seconds`` (docs/protections.md): a listing
    and a guild read per interval, and per window a guild read for counts, an events read
    and a vanity lookup; a read may fall at each end of the span."""
    return 2 * (seconds / INTERVAL + 1) + 3 * (seconds / WINDOW + 1)


@pytest.fixture(scope="module")
def run() -> Iterator[LocalFleet]:
    with local_fleet(
        INSTANCES,
        rate_limit=10,
        name="guild-flood",
        ALLOWED_GUILD_IDS=GUILD_ID,
        GUILD_LIST_MIN_REFRESH_SECONDS=str(INTERVAL),
        CACHE_FRESH_SECONDS=str(int(WINDOW)),
    ) as fleet:
        yield fleet


def test_a_flood_in_guild_mode(benchmark: Any, run: LocalFleet) -> None:
    state = run.emulator.state
    guild = state.add_guild("Guarded", id=GUILD_ID, vanity_url_code="guarded")
    state.add_invite(guild, code="guarded")
    real = [state.add_invite(guild, code=f"gm-{n:04}").code for n in range(GUILD_INVITES - 1)]
    event = state.add_event(guild, "Launch", scheduled_start_time=time.time() + 86_400)
    flood: list[float] = []
    flood_statuses: list[int] = []
    legit: list[tuple[int, float]] = []
    new_invites: list[float] = []

    def flood_one(n: int) -> None:
        if n % 2:
            path = f"rnd{secrets.token_hex(4)}"
        else:
            path = f"{real[0]}?guild_scheduled_event_id={secrets.randbelow(10**18)}"
        status, _, ms = run.get(FLOODER, path)
        flood.append(ms)
        flood_statuses.append(status)

    def caller(n: int, start: float) -> None:
        source = f"127.0.0.{10 + n}"
        for round_ in range(3):
            time.sleep(max(0.0, start + (round_ + n / CALLERS) * SECONDS / 3 - time.time()))
            status, _, ms = run.get(source, real[1 + n * 3 + round_])
            legit.append((status, ms))
            status, _, ms = run.get(source, f"{real[2 + n]}?with_counts=true")
            legit.append((status, ms))
            made = state.add_invite(guild, code=f"gm-new-{n:02}-{round_}").code
            made_at = time.monotonic()
            while True:  # a browser, obeying the 404's max-age
                status, headers, ms = run.get(source, made)
                if status != 404 or time.monotonic() - made_at > 3 * INTERVAL:
                    break
                max_age = int(headers.get("Cache-Control", "max-age=1").split("max-age=")[1])
                time.sleep(max_age + 0.05)
            legit.append((status, ms))
            new_invites.append(time.monotonic() - made_at)

    spans: list[float] = []

    def scenario() -> None:
        started = during_a_flood(flood_one, caller, rate=RATE, seconds=SECONDS, callers=CALLERS)
        spans.append(time.time() - started)

    benchmark.pedantic(scenario, rounds=1, iterations=1)
    upstream = [r for r in state.requests if r.route and not r.route.startswith("POST")]
    invites_asked = [r for r in upstream if r.route == "GET /invites/{code}"]
    legit_ok = sum(1 for status, _ in legit if status == 200) / max(1, len(legit))
    report = {
        "flood_requests": len(flood),
        "flood_statuses": {s: flood_statuses.count(s) for s in set(flood_statuses)},
        "legit_lookups": len(legit),
        "upstream_calls": len(upstream),
        "by_route": {
            r: sum(1 for u in upstream if u.route == r) for r in {u.route for u in upstream}
        },
        "bound": bound(spans[0]),
        "invites_asked": [r.path for r in invites_asked],
        "event": event.id,
    }
    print("\nguild flood:", report)
    benchmark.extra_info.update(report)
    assert len(legit) == CALLERS * 9  # every lookup was answered (a benchmark, not a test)
    record(
        guild_flood_legit_success_ratio=legit_ok,
        guild_flood_new_invite_seconds=max(new_invites),
        guild_flood_upstream_ratio=len(upstream) / bound(spans[0]),
        guild_flood_answer_ms_p50=statistics.median(flood),
        guild_flood_answer_ms_p99=percentile(flood, 0.99),
        guild_flood_legit_answer_ms_p50=statistics.median(ms for _, ms in legit),
        guild_flood_legit_answer_ms_p99=percentile([ms for _, ms in legit], 0.99),
    )
    add(upstream_429s=float(sum(1 for r in upstream if r.status == 429)))


def test_a_refresh_of_the_largest_guild(benchmark: Any, run: LocalFleet) -> None:
    """A refresh of 1,000 invites against the moto server: the first writes every one,
    the next only what changed (one invite here)."""
    import boto3

    client = boto3.client("dynamodb", endpoint_url=run.endpoint, region_name="us-east-1")
    mirror = DynamoDBGuildMirror(client, run.table)
    listing = [
        {"code": f"big-{n:04}", "guild": {"id": "42"}, "max_age": 0, "expires_at": None}
        for n in range(GUILD_INVITES)
    ]
    invites = [m for item in listing if (m := mirrored(item, "42"))]
    timings: dict[str, float] = {}

    def refreshes() -> None:
        started = time.perf_counter()
        mirror.refresh("42", invites, time.time())
        timings["first"] = (time.perf_counter() - started) * 1000
        changed = [*invites[:-1], mirrored(listing[-1] | {"channel": {"id": "7"}}, "42")]
        started = time.perf_counter()
        mirror.refresh("42", [i for i in changed if i is not None], time.time())
        timings["unchanged"] = (time.perf_counter() - started) * 1000

    benchmark.pedantic(refreshes, rounds=1, iterations=1)
    record(
        guild_refresh_1000_ms=timings["first"],
        guild_refresh_1000_unchanged_ms=timings["unchanged"],
    )
