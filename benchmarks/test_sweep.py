"""A revocation sweep against Discord's limit: 500 invites revoked by one rule.

The real revoker runs in its own process (`python -m invite_proxy_local.invoke`,
as a Lambda instance would, with its timeout as the deadline) against a moto
server and the emulator in this one, whose DELETE bucket allows 25 a second,
under the fleet's own 40. Runs repeat while invites are left, as the schedule
would. sweep_time_ratio is the span of the DELETEs (first to last, as Discord
saw them) over the least that bucket allows for the invites (target at most
1.1), the median of SWEEP_ROUNDS sweeps, with their least and most beside it;
their 429s add to upstream_429s.
"""

from __future__ import annotations

import json
import math
import os
import statistics
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
# Sweeps measured, each from a fresh table and guild: the ratio is their median, and
# their least and most are the spread.
ROUNDS = int(os.environ.get("SWEEP_ROUNDS", "3"))
BUCKET, WINDOW = 25, 1.0
ROUTE = "DELETE /invites/{code}"
MAX_RUNS = 10


def invoke(event: Path, env: dict[str, str]) -> dict[str, Any]:
    """One invocation of the revoker, as the schedule makes it; a failed one says why."""
    done = subprocess.run(
        [sys.executable, "-m", "invite_proxy_local.invoke", "RevokerFunction", str(event)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, f"the run failed: {last}\n{done.stderr[-2000:]}"
    return json.loads(last)  # type: ignore[no-any-return]


def one_sweep(tmp_path: Path, name: str) -> dict[str, Any]:
    server, endpoint = start_moto_server()
    emulator = DiscordEmulator(EmulatorState()).start()
    summaries: list[dict[str, Any]] = []
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
        event = tmp_path / f"{name}.json"
        rule = {"name": "bench-sweep", "guild_id": guild.id, "match": {"older_than_seconds": 0}}
        event.write_text(json.dumps(rule))
        for _ in range(MAX_RUNS):
            summaries.append(invoke(event, env))
            if not emulator.state.guild_invites(guild):
                break
        deletes = emulator.state.requests_to(ROUTE)
    finally:
        emulator.stop()
        server.stop()

    statuses = Counter(r.status for r in deletes)
    span = max(r.at for r in deletes) - min(r.at for r in deletes)
    least = (math.ceil(INVITES / BUCKET) - 1) * WINDOW
    revoked = sum(s.get("revoked", 0) for s in summaries)
    # A benchmark of a sweep that did not finish is void.
    assert revoked == INVITES, summaries[-1]
    return {
        "runs": len(summaries),
        "delete_statuses": dict(statuses),
        "delete_span_seconds": round(span, 2),
        "least_seconds": least,
        "sweep_time_ratio": round(span / least if least else 1.0, 3),
        "429s": statuses[429],
    }


def test_a_sweep_revokes_at_the_pace_discord_allows(benchmark: Any, tmp_path: Path) -> None:
    sweeps: list[dict[str, Any]] = []

    def sweep() -> None:
        for n in range(ROUNDS):
            sweeps.append(one_sweep(tmp_path, f"round-{n}"))

    benchmark.pedantic(sweep, rounds=1, iterations=1)
    ratios = sorted(s["sweep_time_ratio"] for s in sweeps)
    report = {"invites": INVITES, "rounds": ROUNDS, "sweeps": sweeps}
    print("\nsweep:", json.dumps(report))
    benchmark.extra_info.update(report)
    record(
        sweep_time_ratio=statistics.median(ratios),
        sweep_time_ratio_min=ratios[0],
        sweep_time_ratio_max=ratios[-1],
    )
    add(upstream_429s=float(sum(s["429s"] for s in sweeps)))
