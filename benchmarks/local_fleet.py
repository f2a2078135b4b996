"""A fleet of local API processes over one moto server and one Discord emulator.

Each process is one Lambda instance (its own memory, one request at a time), as
`make run` serves the API; the benchmarks that need a fleet start it here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from discord_emulator import DiscordEmulator, EmulatorState
from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.template import Template
from tests.conftest import closed_port
from tests.e2e.local_processes import Process, clean_env


@dataclass
class LocalFleet:
    urls: list[str]
    emulator: DiscordEmulator


@contextmanager
def local_fleet(instances: int, *, rate_limit: int, name: str, **env: str) -> Iterator[LocalFleet]:
    """``instances`` API processes; the emulator's buckets allow ``rate_limit`` a second."""
    server, endpoint = start_moto_server()
    table = f"{name}-{uuid.uuid4().hex[:8]}"
    ensure_table(Template(), table, endpoint)
    emulator = DiscordEmulator(EmulatorState()).start()
    emulator.state.rate_limit, emulator.state.rate_window = rate_limit, 1.0
    ports = [closed_port() for _ in range(instances)]
    settings = {
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "CACHE_TABLE_NAME": table,
        "DISCORD_API_BASE_URL": emulator.base_url,
        "DISCORD_BOT_TOKEN": "bench-bot",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **env,
    }
    processes = [Process(clean_env(PORT=str(port), **settings)) for port in ports]
    try:
        for process in processes:
            process.wait_for("CORS:")
            process.keep_reading()
        yield LocalFleet([f"http://127.0.0.1:{port}" for port in ports], emulator)
    finally:
        for process in processes:
            process.stop()
        emulator.stop()
        server.stop()  # type: ignore[attr-defined]
