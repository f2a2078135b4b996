"""The local run's DynamoDB (moto, behind a lock): each request atomic, as on DynamoDB.

moto's TransactWriteItems copies the table and puts the copy back when a condition
fails, losing what another thread wrote meanwhile; the local server answers one request
at a time so that a fleet's transactions (every lookup's claim) lose nothing.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.exceptions import ClientError

from invite_proxy_local.dynamodb import start_moto_server

OLD = 1500


def test_transactions_refused_beside_writes_lose_none_of_them() -> None:
    server, endpoint = start_moto_server()
    try:
        client: Any = boto3.client("dynamodb", endpoint_url=endpoint)
        client.create_table(
            TableName="atomic",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="atomic", Item={"pk": {"S": "held"}})
        for first in range(0, OLD, 25):  # a table worth copying: the copy takes its time
            batch = [
                {"PutRequest": {"Item": {"pk": {"S": f"old-{n}"}, "body": {"S": "x" * 500}}}}
                for n in range(first, first + 25)
            ]
            client.batch_write_item(RequestItems={"atomic": batch})
        failures: list[str] = []

        written: list[int] = []
        done = threading.Event()

        def writes() -> None:  # all along the transactions
            own: Any = boto3.client("dynamodb", endpoint_url=endpoint)
            while not done.is_set():
                own.put_item(TableName="atomic", Item={"pk": {"S": f"new-{len(written)}"}})
                written.append(1)

        def refused_transactions() -> None:
            own: Any = boto3.client("dynamodb", endpoint_url=endpoint)
            for _ in range(50):
                try:
                    own.transact_write_items(
                        TransactItems=[
                            {
                                "Put": {
                                    "TableName": "atomic",
                                    "Item": {"pk": {"S": "held"}},
                                    "ConditionExpression": "attribute_not_exists(pk)",
                                }
                            }
                        ]
                    )
                except ClientError as exc:
                    code = exc.response["Error"]["Code"]
                    if code != "TransactionCanceledException":
                        failures.append(code)

        writer = threading.Thread(target=writes)
        refusers = [threading.Thread(target=refused_transactions) for _ in range(6)]
        for thread in (writer, *refusers):
            thread.start()
        for thread in refusers:
            thread.join()
        done.set()
        writer.join()
        pages = client.get_paginator("scan").paginate(TableName="atomic", Select="COUNT")
        assert sum(page["Count"] for page in pages) == 1 + OLD + len(written)
        assert failures == []
    finally:
        server.stop()
