"""A flood of random codes from one caller, beside other callers' real lookups (open mode).

Local API processes (each one request at a time, as a Lambda instance; each request
to an idle one) over one moto server and the emulator, with the default budget (200
lookups per 10 minutes) and shares (20 per caller). One caller sends random,
valid-looking codes at FLOOD_RATE a second for FLOOD_SECONDS; meanwhile other
callers, each from an address of its own, look up real invites that are not cached,
some of them made during the flood. Then the flooder tries again, once a second,
until one of its misses is served: the time its share takes to give one back.

Keys: flood_legit_success_ratio (at least 0.95), flood_flooder_spend_ratio (the
flooder's Discord calls over what its share allows in the time, at most 1.0),
flood_recovery_seconds (at most a share's refill, 30 s, and Retry-After's rounding up to
a whole second: the client asks again when the 429 says; where in 0 to 31 it lands is the
phase of the flood's last take), answer times p50/p99 for
the flood's requests and the others' (flood_answer_ms_*, flood_legit_answer_ms_*).
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.local_fleet import LocalFleet, during_a_flood, local_fleet, percentile
from benchmarks.results import add, record

SECONDS = float(os.environ.get("FLOOD_SECONDS", "60"))
RATE = float(os.environ.get("FLOOD_RATE", "10"))  # the flooder's requests a second
INSTANCES = int(os.environ.get("FLOOD_INSTANCES", "3"))
CALLERS = 12  # the others, each with an address of its own
SHARE, SHARE_WINDOW = 20, 600.0  # the defaults: LOOKUP_SHARE_PER_CALLER per 10 minutes
FLOODER = "127.0.0.2"
ROUTE = "GET /invites/{code}"


@pytest.fixture(scope="module")
def run() -> Iterator[LocalFleet]:
    with local_fleet(INSTANCES, rate_limit=10, name="flood") as fleet:
        yield fleet


def get(run: LocalFleet, source: str, code: str) -> tuple[int, float]:
    status, _, ms = run.get(source, code)
    return status, ms


def test_a_flood_from_one_caller(benchmark: Any, run: LocalFleet) -> None:
    rng = random.Random(20261204)
    guild = run.emulator.state.add_guild("Flooded")
    before = [f"real-{n:03}" for n in range(CALLERS * 3)]
    for code in before:
        run.emulator.state.add_invite(guild, code=code)
    flood: list[tuple[int, float]] = []
    legit: list[tuple[int, float]] = []
    made_during: list[str] = []
    recovery: list[float] = []

    def caller(n: int, start: float) -> None:
        mine = before[n * 3 : n * 3 + 3]
        for round_ in range(3):
            time.sleep(max(0.0, start + (round_ + rng.random()) * SECONDS / 3 - time.time()))
            fresh = f"made-{n:02}-{round_}"  # an invite made during the flood
            run.emulator.state.add_invite(guild, code=fresh)
            made_during.append(fresh)
            for code in (mine[round_], fresh):
                legit.append(get(run, f"127.0.0.{10 + n}", code))

    def scenario() -> None:
        during_a_flood(
            lambda _: flood.append(get(run, FLOODER, secrets.token_hex(5))),
            caller,
            rate=RATE,
            seconds=SECONDS,
            callers=CALLERS,
        )
        ended = time.time()
        # As a well-behaved client does: ask again when the 429's Retry-After says (whole
        # seconds, rounded up), so the figure is the share's own refill, not a poll's.
        while (answer := run.get(FLOODER, secrets.token_hex(5)))[0] == 429:
            time.sleep(float(answer[1].get("Retry-After", "1")))
        recovery.append(time.time() - ended)

    benchmark.pedantic(scenario, rounds=1, iterations=1)
    sent = run.emulator.state.requests_to(ROUTE)
    legit_codes = set(before) | set(made_during)
    flooder_sent = [r.path.rsplit("/", 1)[1] for r in sent]
    flooder_sent = [code for code in flooder_sent if code not in legit_codes]
    # What its share pays for is lookups: each random code once, however many attempts
    # Discord saw for it (a retry after a timeout is the same lookup, the same share).
    flooder_calls = len(set(flooder_sent))
    allowed = SHARE + SECONDS // (SHARE_WINDOW / SHARE) + 1  # its share, and what refilled
    legit_ok = sum(1 for status, _ in legit if status == 200) / max(1, len(legit))
    report = {
        "flood_requests": len(flood),
        "flood_statuses": {s: sum(1 for t, _ in flood if t == s) for s in {t for t, _ in flood}},
        "legit_lookups": len(legit),
        "flooder_lookups": flooder_calls,
        "flooder_upstream_attempts": len(flooder_sent),
        "allowed": allowed,
    }
    print("\nflood:", report)
    benchmark.extra_info.update(report)
    assert len(legit) == CALLERS * 6  # every lookup was answered (a benchmark, not a test)
    record(
        flood_legit_success_ratio=legit_ok,
        flood_flooder_spend_ratio=(flooder_calls - 1) / allowed,  # the recovery's own call aside
        flood_recovery_seconds=recovery[0],
        flood_answer_ms_p50=statistics.median(ms for _, ms in flood),
        flood_answer_ms_p99=percentile([ms for _, ms in flood], 0.99),
        flood_legit_answer_ms_p50=statistics.median(ms for _, ms in legit),
        flood_legit_answer_ms_p99=percentile([ms for _, ms in legit], 0.99),
    )
    add(upstream_429s=float(sum(1 for r in sent if r.status == 429)))
