"""DynamoDB for the local run: an embedded moto server, or the endpoint you name."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError

from invite_proxy_local.template import Template


def start_moto_server() -> tuple[object, str]:
    """An in-process moto server on a free loopback port: (server, endpoint URL)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def ensure_table(template: Template, table_name: str, endpoint_url: str | None = None) -> bool:
    """Create the cache table from template.yaml's own definition unless it exists.

    Several local runs may start together over one DynamoDB, as a Lambda fleet
    does: whoever loses the race to create the table waits for it to be ACTIVE.
    Returns True when this call created the table.
    """
    client = boto3.client("dynamodb", endpoint_url=endpoint_url)
    wait = client.get_waiter("table_exists")
    try:
        client.describe_table(TableName=table_name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    else:
        wait.wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return False
    try:
        client.create_table(**template.create_table_kwargs(table_name))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        # "Already exists" means another run created it a moment ago: ready soon.
        wait.wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return False
    wait.wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ttl_attribute = template.ttl_attribute()
    if ttl_attribute:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
    return True
