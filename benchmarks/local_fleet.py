"""A fleet of local API processes over one moto server and one Discord emulator.

Each process is one Lambda instance (its own memory, one request at a time), as
`make run` serves the API; the benchmarks that need a fleet start it here.
"""

from __future__ import annotations

import http.client
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from discord_emulator import DiscordEmulator, EmulatorState
from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.template import Template
from tests.conftest import closed_port
from tests.e2e.local_processes import Process, clean_env


@dataclass
class LocalFleet:
    urls: list[str]
    emulator: DiscordEmulator
    endpoint: str  # the moto server's
    table: str
    idle: queue.Queue[str] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        for url in self.urls:
            self.idle.put(url)

    def get(self, source: str, path: str) -> tuple[int, dict[str, str], float]:
        """One lookup (``/invites/<path>``) from ``source``, sent to an idle instance, as
        API Gateway hands a request to an idle Lambda instance: (status, headers, ms)."""
        instance = self.idle.get()
        started = time.monotonic()
        try:
            host, port = instance.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(
                host, int(port), timeout=30, source_address=(source, 0)
            )
            try:
                conn.request("GET", f"/invites/{path}")
                response = conn.getresponse()
                response.read()
                status, headers = response.status, dict(response.getheaders())
            finally:
                conn.close()
        finally:
            self.idle.put(instance)
        return status, headers, (time.monotonic() - started) * 1000


def during_a_flood(
    flood_one: Callable[[int], None],
    caller: Callable[[int, float], None],
    *,
    rate: float,
    seconds: float,
    callers: int,
) -> float:
    """Send ``flood_one(n)`` ``rate`` times a second (4 at once at most) for at least
    ``seconds``, while ``callers`` others each run ``caller(n, started)``; when it started."""
    stop = threading.Event()
    started = time.time()

    def flooder() -> None:
        with ThreadPoolExecutor(4) as pool:
            n = 0
            while not stop.is_set():
                pool.submit(flood_one, n)
                n += 1
                time.sleep(1 / rate)

    flood_thread = threading.Thread(target=flooder)
    flood_thread.start()
    with ThreadPoolExecutor(callers) as pool:
        list(pool.map(lambda n: caller(n, started), range(callers)))
    time.sleep(max(0.0, started + seconds - time.time()))
    stop.set()
    flood_thread.join()
    return started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


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
        # Each process one instance, its handler loaded as it starts: the fleet's size is
        # the number of processes, and no cold start lands in the middle of a burst.
        "LOCAL_MAX_INSTANCES": "0",
        **env,
    }
    processes = [Process(clean_env(PORT=str(port), **settings)) for port in ports]
    try:
        for process in processes:
            process.wait_for("CORS:")
            process.keep_reading()
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        yield LocalFleet(urls, emulator, endpoint, table)
    finally:
        for process in processes:
            process.stop()
        emulator.stop()
        server.stop()
