"""A revocation sweep against Discord's limit: 500 invites revoked by one rule.

The revoker runs in-process (the real handler, its Lambda timeout as the
deadline) against a moto server and the emulator, whose DELETE bucket allows
25 a second, under the fleet's own 40 a second. Runs repeat while invites are
left, as the schedule would. sweep_time_ratio is the elapsed time over the least
that bucket allows for the invites (target at most 1.1); its 429s add to
upstream_429s.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections import Counter
from typing import Any

from benchmarks.results import add, record
from discord_emulator import DiscordEmulator, EmulatorState
from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.gateway import ExecutionEnvironment
from invite_proxy_local.template import Template

INVITES = int(os.environ.get("SWEEP_INVITES", "500"))
BUCKET, WINDOW = 25, 1.0
ROUTE = "DELETE /invites/{code}"
MAX_RUNS = 10


def test_a_sweep_revokes_at_the_pace_discord_allows(benchmark: Any) -> None:
    saved = dict(os.environ)
    server, endpoint = start_moto_server()
    emulator = DiscordEmulator(EmulatorState()).start()
    try:
        emulator.state.rate_limit, emulator.state.rate_window = BUCKET, WINDOW
        guild = emulator.state.add_guild("Sweep")
        for n in range(INVITES):
            emulator.state.add_invite(guild, code=f"sweep-{n:03}", max_age=86_400)
        table = f"sweep-{uuid.uuid4().hex[:8]}"
        template = Template()
        ensure_table(template, table, endpoint)
        os.environ.update(
            AWS_ENDPOINT_URL_DYNAMODB=endpoint,
            CACHE_TABLE_NAME=table,
            DISCORD_API_BASE_URL=emulator.base_url,
            DISCORD_BOT_TOKEN="bench-bot",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        revoker = ExecutionEnvironment(template.functions()["RevokerFunction"])
        rule = {"name": "bench-sweep", "guild_id": guild.id, "match": {"older_than_seconds": 0}}
        summaries: list[dict[str, Any]] = []

        def sweep() -> None:
            for _ in range(MAX_RUNS):
                summaries.append(revoker.invoke(rule))
                if not emulator.state.guild_invites(guild):
                    return

        started = time.monotonic()
        benchmark.pedantic(sweep, rounds=1, iterations=1)
        elapsed = time.monotonic() - started
    finally:
        emulator.stop()
        server.stop()  # type: ignore[attr-defined]
        os.environ.clear()
        os.environ.update(saved)

    deletes = emulator.state.requests_to(ROUTE)
    statuses = Counter(r.status for r in deletes)
    least = (math.ceil(INVITES / BUCKET) - 1) * WINDOW
    revoked = sum(s.get("revoked", 0) for s in summaries)
    report = {
        "invites": INVITES,
        "runs": len(summaries),
        "revoked": revoked,
        "delete_statuses": dict(statuses),
        "elapsed_seconds": round(elapsed, 2),
        "least_seconds": least,
        "sweep_time_ratio": round(elapsed / least if least else 1.0, 3),
    }
    print("\nsweep:", json.dumps(report))
    benchmark.extra_info.update(report)
    assert revoked == INVITES, summaries[-1]  # a benchmark of a sweep that did not finish is void
    record(sweep_time_ratio=elapsed / least if least else 1.0)
    add(upstream_429s=float(statuses[429]))
