"""DynamoDB calls per request kind, counted through the local run and the real handler:
every adapter calls the table through TableCalls, so each call is counted there.

What a request costs the table is most of its latency and its price. The figures here
are each kind's count today, so that any change that adds a call fails; issue 23 brings
a miss to 5 and a refused miss to 2, and these bounds come down as it does.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import requests

from discord_emulator import DiscordEmulator
from invite_proxy.adapters.dynamodb.calls import TableCalls
from invite_proxy_local.runner import LocalRun

TOKEN = "dip_table-calls-token-00000000000000000000000000"
# Each request kind's table calls at most, as counted below. Taking from an allowance
# (the caller's share, the budget) is one conditional write, or two when it was part
# spent: the bounds count two.
BOUNDS = {
    "hit from memory": 0,
    "hit": 1,
    "miss": 14,
    "unknown miss": 15,
    "refused miss": 6,
    "DELETE": 9,  # a code cached in one variant
}


@pytest.fixture
def table_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    send = TableCalls._send

    def counted(self: TableCalls, what: str, *args: Any, **kwargs: Any) -> Any:
        calls[what] += 1
        return send(self, what, *args, **kwargs)

    monkeypatch.setattr(TableCalls, "_send", counted)
    return calls


def test_each_request_kind_makes_no_more_table_calls_than_its_bound(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, table_calls: Counter[str]
) -> None:
    guild = emulator.state.add_guild("G")
    for code in ("calls-1", "calls-2", "calls-3"):
        emulator.state.add_invite(guild, code=code)
    os.environ.update(LOCAL_ADMIN_TOKEN=TOKEN, LOOKUP_SHARE_PER_CALLER="3")
    memory_off = start_api(MEMORY_CACHE_SECONDS="0")  # every hit reads the table
    run = start_api(MEMORY_CACHE_SECONDS="1")

    def get(at: LocalRun, code: str) -> Callable[[], requests.Response]:
        return lambda: requests.get(f"{at.url}/invites/{code}", timeout=10)

    def delete(code: str) -> Callable[[], requests.Response]:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        return lambda: requests.delete(f"{run.url}/invites/{code}", headers=auth, timeout=10)

    counted: dict[str, tuple[int, Counter[str]]] = {}

    def count(kind: str, request: Callable[[], requests.Response], status: int) -> None:
        table_calls.clear()
        assert request().status_code == status, kind
        counted[kind] = (sum(table_calls.values()), Counter(table_calls))

    assert get(memory_off, "calls-3")().status_code == 200  # the caller's first lookup
    count("hit", get(memory_off, "calls-3"), 200)
    count("miss", get(run, "calls-1"), 200)  # its second
    count("hit from memory", get(run, "calls-1"), 200)
    count("unknown miss", get(run, "nope-1"), 404)  # its third and last
    count("refused miss", get(run, "calls-2"), 429)
    count("DELETE", delete("calls-1"), 200)
    over = {kind: calls for kind, (total, calls) in counted.items() if total > BOUNDS[kind]}
    assert not over, over
    # Counted at all (the handler ran in this process, where the count is kept).
    assert (counted["hit"][0], counted["hit from memory"][0]) == (1, 0)
    assert counted["miss"][0] > counted["refused miss"][0] > 1
