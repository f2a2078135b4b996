"""Taking turns in a bucket, as a fleet does: instances on threads, over DynamoDB (moto)
and the Discord emulator, each with its own guard and its own memory.

A bucket refills at a known time, and every caller that cannot have a request now
waits for its turn: in the order it came, so that no caller is passed by later
ones, and without waking all at once at each refill.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from discord_emulator import DiscordEmulator
from discord_emulator.state import Guild
from invite_proxy.adapters.fleet_state.dynamodb import DynamoDBFleetState
from invite_proxy.domain.deadline import Deadline
from invite_proxy.edges.settings import ApiSettings
from invite_proxy.edges.wiring import discord_client, guarded_discord
from tests.conftest import BOT_TOKEN

ROUTE = "GET /invites/{code}"
CALLERS = 8
ARRIVALS_APART = 0.1  # seconds between callers' arrivals: far more than a join takes


def test_callers_waiting_for_a_bucket_take_their_turns_in_the_order_they_came(
    emulator: DiscordEmulator, guild: Guild, dynamodb: Any, table_name: str
) -> None:
    emulator.state.rate_limit, emulator.state.rate_window = 2, 0.5  # 2 calls per half second
    codes = [f"turn-{n}" for n in range(CALLERS)]
    for code in codes:
        emulator.state.add_invite(guild, code=code)
    settings = ApiSettings.from_env(
        {
            "CACHE_TABLE_NAME": table_name,
            "DISCORD_API_BASE_URL": emulator.base_url,
            "DISCORD_BOT_TOKEN": BOT_TOKEN,
        }
    )
    start = threading.Barrier(CALLERS)
    # Each caller comes once the one before it has asked the bucket: the order they came
    # in, whatever else loads the machine (a sleep alone can oversleep past the next).
    asked = [threading.Event() for _ in range(CALLERS)]

    class Arriving(DynamoDBFleetState):
        def __init__(self, n: int) -> None:
            super().__init__(dynamodb, table_name)
            self._n = n

        def take_bucket(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().take_bucket(*args, **kwargs)
            finally:
                asked[self._n].set()

    def caller(n: int) -> int:
        """One instance, arriving ARRIVALS_APART after the one before it asked."""
        road = guarded_discord(settings, discord_client(settings), Arriving(n))
        start.wait()
        if n:
            asked[n - 1].wait(10)
        time.sleep(ARRIVALS_APART)
        limit = Deadline(time.time() + 8.0)  # a lookup's deadline
        return road.lookup_invite(codes[n], {}, deadline=limit, call_deadline=limit).status

    with ThreadPoolExecutor(CALLERS) as pool:
        statuses = list(pool.map(caller, range(CALLERS)))

    assert statuses == [200] * CALLERS
    sent = emulator.state.requests_to(ROUTE)
    assert [r.status for r in sent] == [200] * CALLERS  # not one 429
    # Each call went out in its caller's turn: nobody was passed by a later caller.
    assert [r.path.rsplit("/", 1)[-1] for r in sent] == codes
