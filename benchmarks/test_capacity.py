"""What the local run carries: hits a second per instance, and latency by how each
request was answered, under load from a load-testing tool (locust), beside the rate
one thread gets from bare GetItems against the same DynamoDB.

The local run is `make run`'s: its gateway hands each request to an idle instance of
up to CAPACITY_INSTANCES, each a process of its own. DynamoDB is a moto server in a
process of its own; the invites are cached first, so the load is hits, as a busy
page's is. Locust drives CAPACITY_USERS browsers with no pause for CAPACITY_SECONDS.

Keys: hit_rps_per_instance_ratio (hits a second per instance ÷ bare GetItems a second
on one thread), hit_p50_ms and hit_p99_ms (locust's, for requests answered X-Cache:
HIT), capacity_rps (every answer a second, through the whole local run).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import requests

from benchmarks.results import record
from discord_emulator import DiscordEmulator
from discord_emulator.state import EmulatorState
from invite_proxy.adapters.dynamodb import keys
from invite_proxy_local.dynamodb import ensure_table, start_moto_process
from invite_proxy_local.template import Template
from tests.conftest import closed_port
from tests.e2e.local_processes import Process, clean_env

INSTANCES = int(os.environ.get("CAPACITY_INSTANCES", "2"))
# Two browsers an instance: each instance always has the next request waiting, and
# the latency is an instance's own, not a queue's.
USERS = int(os.environ.get("CAPACITY_USERS", str(2 * INSTANCES)))
SECONDS = int(os.environ.get("CAPACITY_SECONDS", "20"))
CODES = [f"hot-{n:02}" for n in range(20)]  # the invites a busy page embeds
LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def bare_get_items_per_second(endpoint: str, table: str, seconds: float) -> float:
    """One thread, one GetItem after another, for ``seconds``."""
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    key = keys.variant_key(CODES[0], "counts=0#event=-")
    done, ends = 0, time.perf_counter() + seconds
    while time.perf_counter() < ends:
        client.get_item(TableName=table, Key=key)
        done += 1
    return done / seconds


def locust(url: str, workdir: str) -> dict[str, dict[str, str]]:
    """Run locust headless against ``url``; its figures per request name."""
    prefix = str(Path(workdir) / "load")
    subprocess.run(
        [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--users",
            str(USERS),
            "--spawn-rate",
            str(USERS),
            "--run-time",
            f"{SECONDS}s",
            "--host",
            url,
            "--csv",
            prefix,
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "5",
        ],
        env={**os.environ, "CAPACITY_CODES": ",".join(CODES)},
        check=True,
        capture_output=True,
        timeout=SECONDS + 60,
    )
    with open(f"{prefix}_stats.csv", newline="") as stats:
        return {row["Name"]: row for row in csv.DictReader(stats)}


def test_hits_a_second_per_instance_and_their_latency(benchmark: Any) -> None:
    stop_moto, endpoint = start_moto_process()
    table = f"capacity-{uuid.uuid4().hex[:8]}"
    ensure_table(Template(), table, endpoint)
    emulator = DiscordEmulator(EmulatorState()).start()
    guild = emulator.state.add_guild("Busy page")
    for code in CODES:
        emulator.state.add_invite(guild, code=code)
    port = closed_port()
    run = Process(
        clean_env(
            PORT=str(port),
            AWS_ENDPOINT_URL_DYNAMODB=endpoint,
            CACHE_TABLE_NAME=table,
            DISCORD_API_BASE_URL=emulator.base_url,
            DISCORD_BOT_TOKEN="bench-bot",
            POWERTOOLS_LOG_LEVEL="WARNING",
            LOCAL_MAX_INSTANCES=str(INSTANCES),
            CACHE_FRESH_SECONDS="3600",  # the load is hits: nothing goes stale meanwhile
        )
    )
    figures: dict[str, dict[str, str]] = {}
    try:
        run.wait_for("CORS:")
        run.keep_reading()
        url = f"http://127.0.0.1:{port}"
        for code in CODES:  # cached first: what follows is hits
            assert requests.get(f"{url}/invites/{code}", timeout=30).status_code == 200
        bare = bare_get_items_per_second(endpoint, table, 5.0)
        with tempfile.TemporaryDirectory() as workdir:
            benchmark.pedantic(lambda: figures.update(locust(url, workdir)), rounds=1, iterations=1)
    finally:
        run.stop()
        emulator.stop()
        stop_moto()
    hits, everything = figures["X-Cache HIT"], figures["Aggregated"]
    assert int(everything["Failure Count"]) == 0, everything
    hit_rps = float(hits["Requests/s"])
    report = {
        "bare_get_items_per_second": bare,
        "hits_per_second": hit_rps,
        "instances": INSTANCES,
        "users": USERS,
        "by_x_cache": {name: row["Request Count"] for name, row in figures.items()},
    }
    print("\ncapacity:", report)
    benchmark.extra_info.update(report)
    record(
        hit_rps_per_instance_ratio=hit_rps / INSTANCES / bare,
        hit_p50_ms=float(hits["50%"]),
        hit_p99_ms=float(hits["99%"]),
        capacity_rps=float(everything["Requests/s"]),
    )
