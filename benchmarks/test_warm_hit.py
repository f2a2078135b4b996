"""A warm cache hit through the real handler, against one plain DynamoDB GetItem.

Both go to the same moto server over HTTP, so the difference is what the
handler adds on top of its one read.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from invite_proxy.cache_policy import CachePolicy, invite_entry
from invite_proxy.dynamodb import keys
from invite_proxy.dynamodb.cache import DynamoDBInviteCache
from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.gateway import ExecutionEnvironment
from invite_proxy_local.template import Template

EVENT = json.loads((Path(__file__).resolve().parents[1] / "events" / "get_invite.json").read_text())


@pytest.fixture(scope="module")
def setup() -> Iterator[tuple[Any, str, ExecutionEnvironment]]:
    saved = dict(os.environ)
    server, endpoint = start_moto_server()
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
    environment = ExecutionEnvironment(template.functions()["ApiFunction"])
    yield client, table, environment
    server.stop()  # type: ignore[attr-defined]
    os.environ.clear()
    os.environ.update(saved)


def test_plain_get_item(benchmark: Any, setup: tuple[Any, str, ExecutionEnvironment]) -> None:
    client, table, _ = setup
    key = keys.variant_key("proxy-demo", "counts=0#event=-")
    benchmark(client.get_item, TableName=table, Key=key)


def test_warm_cache_hit_through_handler(
    benchmark: Any, setup: tuple[Any, str, ExecutionEnvironment], capsys: Any
) -> None:
    _, _, environment = setup
    response = environment.invoke(EVENT)
    assert response["headers"]["X-Cache"] == "HIT"
    benchmark(environment.invoke, EVENT)
    capsys.readouterr()  # drop the EMF lines
