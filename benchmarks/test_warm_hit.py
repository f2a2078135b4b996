"""A warm cache hit through the real handler, against one plain DynamoDB GetItem.

Both go to the same moto server over HTTP, so the difference is what the
handler adds on top of its one read (warm_hit_ratio, the in-memory tier off). And a
hit the in-memory tier answers, with no table call, against the same GetItem
(memory_hit_ratio: at most a tenth).
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from benchmarks.results import record
from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
from invite_proxy.domain.cache_policy import CachePolicy, invite_entry
from invite_proxy_local.dynamodb import ensure_table, start_moto_process
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template

EVENT = json.loads((Path(__file__).resolve().parents[1] / "events" / "get_invite.json").read_text())


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Any, str, ExecutionEnvironment, ExecutionEnvironment]]:
    saved = dict(os.environ)
    # In a process of its own, as DynamoDB is: the handler's time is not the server's.
    stop_moto, endpoint = start_moto_process()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        CACHE_TABLE_NAME=f"bench-{uuid.uuid4().hex[:8]}",
        DISCORD_API_BASE_URL="http://127.0.0.1:9/api/v10",  # never called: every lookup hits
        POWERTOOLS_METRICS_NAMESPACE="Bench",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    template = Template()
    table = os.environ["CACHE_TABLE_NAME"]
    ensure_table(template, table, endpoint)
    client = boto3.client("dynamodb", endpoint_url=endpoint)
    policy = CachePolicy(
        fresh_seconds=3600, max_age_seconds=86400, negative_seconds=60, stale_if_error_seconds=0
    )
    body = json.dumps({"code": "proxy-demo", "expires_at": None, "guild": {"id": "1", "name": "G"}})
    DynamoDBInviteCache(client, table).put(
        invite_entry("proxy-demo", "counts=0#event=-", body, None, time.time(), policy)
    )
    function = template.functions()["ApiFunction"]
    os.environ["MEMORY_CACHE_SECONDS"] = "0"  # every hit reads the table
    environment = ExecutionEnvironment(function)
    os.environ["MEMORY_CACHE_SECONDS"] = "10"  # every hit after the first from memory
    remembering = ExecutionEnvironment(function)
    yield client, table, environment, remembering
    stop_moto()
    os.environ.clear()
    os.environ.update(saved)


ROUNDS = int(os.environ.get("WARM_HIT_ROUNDS", "300"))


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _alternating(
    benchmark: Any, get_item: Callable[[], Any], handle: Callable[[int], Any]
) -> tuple[list[float], list[float]]:
    """ROUNDS of one handler call and one bare GetItem in turn, so drift hits both alike:
    (the handler's times, the GetItems'), in ms."""
    handler: list[float] = []
    plain: list[float] = []

    def measure() -> None:
        for n in range(ROUNDS):
            plain.append(_timed(get_item))
            handler.append(_timed(lambda: handle(n)))  # noqa: B023 (called at once)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    return handler, plain


def test_warm_cache_hit_against_one_get_item(
    benchmark: Any,
    setup: tuple[Any, str, ExecutionEnvironment, ExecutionEnvironment],
    capsys: Any,
) -> None:
    """Alternating, same server: the whole handler for a cached invite ÷ one bare GetItem."""
    client, table, environment, _ = setup
    key = keys.variant_key("proxy-demo", "counts=0#event=-")
    response = environment.invoke(EVENT)
    assert response["headers"]["X-Cache"] == "HIT"
    handler, plain = _alternating(
        benchmark,
        lambda: client.get_item(TableName=table, Key=key),
        lambda _: environment.invoke(EVENT),
    )
    capsys.readouterr()  # drop the EMF lines
    ratio = statistics.median(handler) / statistics.median(plain)
    benchmark.extra_info.update(warm_hit_ratio=ratio)
    record(warm_hit_ratio=ratio)
    with capsys.disabled():
        print(
            f"\nwarm hit: {statistics.median(handler):.2f} ms through the handler vs "
            f"{statistics.median(plain):.2f} ms for one GetItem = {ratio:.2f}x (target 1.25x)"
        )


def test_a_hit_from_memory_against_one_get_item(
    benchmark: Any,
    setup: tuple[Any, str, ExecutionEnvironment, ExecutionEnvironment],
    capsys: Any,
) -> None:
    """Alternating, same server: the whole handler for an invite its memory holds ÷ one
    bare GetItem. The handler's own work (Powertools, the event, the answer) is all
    that is left."""
    client, table, _, remembering = setup
    key = keys.variant_key("proxy-demo", "counts=0#event=-")
    assert remembering.invoke(EVENT)["headers"]["X-Cache"] == "HIT"  # read, and kept
    function = remembering.function
    # Lambda hands the handler its context: made before the clock starts, one per call.
    contexts = [
        LambdaContext(function.logical_id, function.memory, function.timeout) for _ in range(ROUNDS)
    ]
    handler, plain = _alternating(
        benchmark,
        lambda: client.get_item(TableName=table, Key=key),
        lambda n: remembering.invoke(EVENT, contexts[n]),
    )
    capsys.readouterr()
    ratio = statistics.median(handler) / statistics.median(plain)
    benchmark.extra_info.update(memory_hit_ratio=ratio)
    record(memory_hit_ratio=ratio)
    with capsys.disabled():
        print(
            f"\nmemory hit: {statistics.median(handler):.3f} ms through the handler vs "
            f"{statistics.median(plain):.2f} ms for one GetItem = {ratio:.3f}x (target 0.1x)"
        )
