"""A revocation sweep against Discord's limit: 500 invites revoked by one rule.

The real revoker runs in its own process (`python -m invite_proxy_local.invoke`,
as a Lambda instance would, with its timeout as the deadline) against a moto
server and the emulator in this one, whose DELETE bucket allows 25 a second,
under the fleet's own 40. Runs repeat while invites are left, as the schedule
would. sweep_time_ratio is the span of the DELETEs (first to last, as Discord
saw them) over the least that bucket allows for the invites (target at most
1.1); its 429s add to upstream_429s.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.results import add, record
from discord_emulator import DiscordEmulator, EmulatorState
from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.template import Template
from tests.e2e.local_processes import REPO, clean_env

INVITES = int(os.environ.get("SWEEP_INVITES", "500"))
BUCKET, WINDOW = 25, 1.0
ROUTE = "DELETE /invites/{code}"
MAX_RUNS = 10


def test_a_sweep_revokes_at_the_pace_discord_allows(benchmark: Any, tmp_path: Path) -> None:
    server, endpoint = start_moto_server()
    emulator = DiscordEmulator(EmulatorState()).start()
    try:
        emulator.state.rate_limit, emulator.state.rate_window = BUCKET, WINDOW
        guild = emulator.state.add_guild("Sweep")
        for n in range(INVITES):
            emulator.state.add_invite(guild, code=f"sweep-{n:03}", max_age=86_400)
        table = f"sweep-{uuid.uuid4().hex[:8]}"
        ensure_table(Template(), table, endpoint)
        env = clean_env(
            AWS_ENDPOINT_URL_DYNAMODB=endpoint,
            CACHE_TABLE_NAME=table,
            DISCORD_API_BASE_URL=emulator.base_url,
            DISCORD_BOT_TOKEN="bench-bot",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        event = tmp_path / "rule.json"
        rule = {"name": "bench-sweep", "guild_id": guild.id, "match": {"older_than_seconds": 0}}
        event.write_text(json.dumps(rule))
        summaries: list[dict[str, Any]] = []

        def invoke() -> dict[str, Any]:
            done = subprocess.run(
                [sys.executable, "-m", "invite_proxy_local.invoke", "RevokerFunction", str(event)],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

        def sweep() -> None:
            for _ in range(MAX_RUNS):
                summaries.append(invoke())
                if not emulator.state.guild_invites(guild):
                    return

        benchmark.pedantic(sweep, rounds=1, iterations=1)
    finally:
        emulator.stop()
        server.stop()  # type: ignore[attr-defined]

    deletes = emulator.state.requests_to(ROUTE)
    statuses = Counter(r.status for r in deletes)
    span = max(r.at for r in deletes) - min(r.at for r in deletes)
    least = (math.ceil(INVITES / BUCKET) - 1) * WINDOW
    ratio = span / least if least else 1.0
    revoked = sum(s.get("revoked", 0) for s in summaries)
    report = {
        "invites": INVITES,
        "runs": len(summaries),
        "revoked": revoked,
        "delete_statuses": dict(statuses),
        "delete_span_seconds": round(span, 2),
        "least_seconds": least,
        "sweep_time_ratio": round(ratio, 3),
    }
    print("\nsweep:", json.dumps(report))
    benchmark.extra_info.update(report)
    assert revoked == INVITES, summaries[-1]  # a benchmark of a sweep that did not finish is void
    record(sweep_time_ratio=ratio)
    add(upstream_429s=float(statuses[429]))
