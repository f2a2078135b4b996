"""`make bench` at a tiny size: the benchmarks run and write their keys (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.local_processes import REPO

KEYS = {
    "cold_start_ratio",
    "cold_start_ratio_authorizer",
    "cold_start_ratio_revoker",
    "cold_start_ms_api",
    "warm_hit_ratio",
    "memory_hit_ratio",
    "hit_rps_per_instance_ratio",
    "hit_p50_ms",
    "hit_p99_ms",
    "capacity_rps",
    "handler_ms_memory_hit",
    "handler_ms_hit",
    "handler_ms_miss",
    "handler_ms_refused_miss",
    "handler_ms_delete",
    "handler_ms_rule_per_invite",
    "handler_ms_authorizer",
    *(
        f"table_calls_per_{kind}"
        for kind in ("memory_hit", "hit", "miss", "refused_miss", "delete", "rule_per_invite")
    ),
    *(
        f"capacity_{kind}_{unit}"
        for kind in ("memory_hit", "hit", "miss", "refused_miss", "delete", "rule_per_invite")
        for unit in ("rru", "wru")
    ),
    "upstream_calls_per_distinct_key",
    "upstream_429s",
    "client_success_ratio",
    "burst_time_ratio",
    "burst_upstream_span_ratio",
    "sweep_time_ratio",
    "sweep_time_ratio_min",
    "sweep_time_ratio_max",
    "flood_legit_success_ratio",
    "flood_flooder_spend_ratio",
    "flood_recovery_seconds",
    "flood_answer_ms_p50",
    "flood_answer_ms_p99",
    "flood_legit_answer_ms_p50",
    "flood_legit_answer_ms_p99",
    "guild_flood_legit_success_ratio",
    "guild_flood_new_invite_seconds",
    "guild_flood_upstream_ratio",
    "guild_flood_answer_ms_p50",
    "guild_flood_answer_ms_p99",
    "guild_flood_legit_answer_ms_p50",
    "guild_flood_legit_answer_ms_p99",
    "guild_refresh_1000_ms",
    "guild_refresh_1000_unchanged_ms",
    "layer_zip_bytes",
    "api_zip_bytes",
}


@pytest.mark.sam
def test_the_benchmarks_run_and_write_every_key(tmp_path: Path) -> None:
    sam = os.environ.get("SAM_BIN") or str(REPO / ".tools/sam/bin/sam")
    if not Path(sam).exists():
        pytest.skip("aws-sam-cli not installed (make install-sam); `make test` always runs this")
    results = tmp_path / "results.json"
    env = dict(
        os.environ,
        SAM_BIN=sam,
        BENCH_RESULTS=str(results),
        BENCH_PLOTS=str(tmp_path / "plots"),
        IMPORT_SAMPLES="1",
        WARM_HIT_ROUNDS="3",
        FLEET_REQUESTS="24",
        FLEET_CODES="8",
        SWEEP_INVITES="30",
        SWEEP_ROUNDS="2",
        FLOOD_SECONDS="3",
        FLOOD_RATE="2",  # within its share: the smoke waits for no refill
        GUILD_INVITES="50",
        GUILD_FLOOD_INTERVAL="1",
        CAPACITY_SECONDS="3",
        HANDLER_ROUNDS="3",
        RULE_INVITES="5",
    )
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "-q"),
            *("-p", "no:cacheprovider", "-p", "no:xdist"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    written = json.loads(results.read_text())
    assert set(written) >= KEYS | {"_machine", "_date"}
    assert all(written[key] >= 0 for key in KEYS)
    plots = {p.name for p in (tmp_path / "plots").glob("*.png")}
    assert plots == {"fleet-latency.png", "fleet-upstream.png"}
