"""The local run's table set-up, as several runs meet it at once over one DynamoDB."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3

from invite_proxy_local.dynamodb import ensure_table
from invite_proxy_local.template import Template


def test_runs_racing_to_create_the_table_all_get_a_ready_table(
    template: Template, moto_endpoint: str
) -> None:
    name = f"race-{uuid.uuid4().hex[:8]}"
    start = threading.Barrier(6)

    def set_up() -> bool:
        start.wait()  # all describe at once, see no table, and try to create it
        return ensure_table(template, name, moto_endpoint)

    with ThreadPoolExecutor(6) as pool:
        created = list(pool.map(lambda _: set_up(), range(6)))
    assert created.count(True) == 1
    table = boto3.client("dynamodb", endpoint_url=moto_endpoint).describe_table(TableName=name)
    assert table["Table"]["TableStatus"] == "ACTIVE"
