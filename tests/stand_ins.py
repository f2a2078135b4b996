"""Stand-ins for a dependency that fails: servers that hang, throttle, or go away and come back.

Real sockets, so the clients meet the fault as they would in AWS: boto3 and
requests go through their own timeouts, retries and connection pools.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HangingServer:
    """Accepts connections and never answers a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _accept(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                self._held.append(self._sock.accept()[0])
            except TimeoutError:
                continue
            except OSError:  # closed
                return

    def close(self) -> None:
        self._stop.set()
        for conn in self._held:
            conn.close()
        self._sock.close()


class ThrottlingServer:
    """Answers every DynamoDB request with one of DynamoDB's throttling errors."""

    def __init__(self, error: str) -> None:
        body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error}", "message": "x"})

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-ErrorType", error)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Relay:
    """Passes connections through to a server, until it fails as told: ``cut()`` (nothing
    listens: connections are refused) or ``hang()`` (connections are accepted and never
    answered). Either drops the connections open. ``restore()`` passes them through again,
    on the same port. ``delay`` slows every answer down by that many seconds."""

    def __init__(self, target_url: str) -> None:
        host, port = target_url.removeprefix("http://").rstrip("/").split(":")
        self._target = (host, int(port))
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._hanging = False
        self.delay = 0.0
        self._port = 0
        self._listener: socket.socket | None = None
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def restore(self) -> None:
        self._drop()
        self._hanging = False
        if self._listener is None:
            listener = socket.create_server(("127.0.0.1", self._port))  # SO_REUSEADDR
            self._port = listener.getsockname()[1]
            listener.settimeout(0.1)
            self._listener = listener
            threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def hang(self) -> None:
        self._drop()
        self._hanging = True

    def cut(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._drop()

    close = cut

    def _drop(self) -> None:
        with self._lock:
            for conn in self._live:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._live.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client = listener.accept()[0]
            except TimeoutError:
                continue
            except OSError:  # cut
                return
            with self._lock:
                self._live.add(client)
            if self._hanging:
                continue  # held, never answered
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._live.add(upstream)
            threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
            threading.Thread(
                target=_pump, args=(upstream, client, lambda: self.delay), daemon=True
            ).start()


def _pump(
    source: socket.socket, sink: socket.socket, delay: Callable[[], float] = lambda: 0.0
) -> None:
    try:
        while data := source.recv(65536):
            time.sleep(delay())
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
