"""The load make bench puts on the local run (benchmarks/test_capacity.py starts it).

Each simulated browser looks up invites a page embeds, one after another with no pause,
over a keep-alive connection. Its requests are counted by how the proxy answered them
(the X-Cache header), so that the figures for hits and misses are apart.
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, task

CODES = os.environ["CAPACITY_CODES"].split(",")


class Browser(FastHttpUser):
    @task
    def look_up(self) -> None:
        code = random.choice(CODES)
        with self.client.get(f"/invites/{code}", name="lookup", catch_response=True) as response:
            # Named for how it was answered: locust's figures per name are then by X-Cache.
            response.request_meta["name"] = f"X-Cache {response.headers.get('X-Cache', '-')}"
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}")
