"""DynamoDB for the local run: an embedded moto server, or the endpoint you name."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable

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


def start_moto_process() -> tuple[Callable[[], None], str]:
    """A moto server in a process of its own: (stop, endpoint URL). What is measured
    beside it then shares no interpreter lock with the server finishing its answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(  # noqa: S603 (this interpreter, its own moto)
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto's server did not start") from None
            time.sleep(0.1)

    def stop() -> None:
        process.terminate()
        process.wait(timeout=10)

    return stop, f"http://127.0.0.1:{port}"


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
