"""DynamoDB for the local run: an embedded moto server, or the endpoint you name."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from invite_proxy_local.template import Template


class _OneAtATime:
    """moto's app, answering one request at a time.

    DynamoDB applies each request atomically; moto does not. Its TransactWriteItems
    copies the table, writes, and puts the copy back when a condition fails: a write
    another thread made meanwhile is lost, and the copy can fail mid-way (a 500). Its
    conditional updates read, check and write in steps another thread can come between.
    Here each request runs alone, as each is atomic on DynamoDB (found when a fleet's
    lookups, each a transaction, lost one another's leases on moto).
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._lock:
            # The body is read and the answer made whole inside the lock.
            return list(self._app(environ, start_response))


def _moto_app() -> _OneAtATime:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return _OneAtATime(DomainDispatcherApplication(create_backend_app))


class MotoServer:
    """moto on a free loopback port, on a thread of this process (see _OneAtATime)."""

    def __init__(self, port: int = 0) -> None:
        from moto.moto_server.werkzeug_app import MotoRequestHandler
        from werkzeug.serving import make_server

        self._server = make_server(
            "127.0.0.1", port, _moto_app(), threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> MotoServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def start_moto_server() -> tuple[MotoServer, str]:
    """An in-process moto server on a free loopback port: (server, endpoint URL)."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise
    server = MotoServer().start()
    return server, server.endpoint


def start_moto_process() -> tuple[Callable[[], None], str]:
    """A moto server in a process of its own: (stop, endpoint URL). What is measured
    beside it then shares no interpreter lock with the server finishing its answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    process = subprocess.Popen(  # noqa: S603 (this interpreter, its own moto)
        [sys.executable, "-m", "invite_proxy_local.dynamodb", str(port)],
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


if __name__ == "__main__":  # start_moto_process's server: python -m ... <port>
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    MotoServer(int(sys.argv[1]))._server.serve_forever()
