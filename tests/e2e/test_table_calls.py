"""DynamoDB calls per request kind, counted through the local run and the real handler:
every adapter calls the table through TableCalls, so each call is counted there.

What a request costs the table is most of its latency and its price. A miss reads its
variant, claims its lease with everything its call to Discord takes from the fleet but the
bucket (one transaction: adapters/dynamodb/lease_store.py), takes from the bucket, and
writes its answer with the lease settled in the same call: 4. A miss refused by the
caller's share or the budget is its read and the claim that says no: 2 (once the
instance knows it spent, the second is a read of what would answer first, and takes
nothing). A bucket answer the fleet already knows is not
written back. These are the bounds; a change that adds a call fails here.
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
# Each request kind's table calls at most, as counted below. A claim whose guess of an
# allowance's state (whole, or part spent) was wrong tries once more: the miss's bound
# has room for that one.
BOUNDS = {
    "hit from memory": 0,
    "hit": 1,
    "miss": 5,
    "unknown miss": 5,
    "refused miss": 2,
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


def test_a_miss_the_budget_refuses_makes_two_table_calls_and_then_none_more(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, table_calls: Counter[str]
) -> None:
    """The budget is the fleet's: a miss it refuses is the miss's read and the claim that
    says no, nothing taken and nothing to give back; the instance then knows until when,
    and the next refusal reads only what would come first (a fetch under way, a code
    known unknown) in the claim's stead."""
    guild = emulator.state.add_guild("G")
    for code in ("budget-1", "budget-2", "budget-3"):
        emulator.state.add_invite(guild, code=code)
    run = start_api(LOOKUP_BUDGET_PER_10_MINUTES="1", LOOKUP_SHARE_PER_CALLER="0")
    other = start_api(LOOKUP_BUDGET_PER_10_MINUTES="1", LOOKUP_SHARE_PER_CALLER="0")
    assert requests.get(f"{run.url}/invites/budget-1", timeout=10).status_code == 200
    refusals = []
    for at, code in ((other, "budget-2"), (other, "budget-3")):
        table_calls.clear()
        response = requests.get(f"{at.url}/invites/{code}", timeout=10)
        assert response.status_code in (429, 503), response.text
        assert response.json()["error"]["code"] == "lookup_budget_exhausted"
        refusals.append(sum(table_calls.values()))
    assert refusals == [2, 2]
