"""The emulator's HTTP server: real sockets, Discord's paths under /api/v10."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from discord_emulator.state import EmulatorState, Fault, RecordedRequest

API_PREFIX = "/api/v10"
INVITES_BUCKET = "b6c5b1d9e5a4f0c2d1e8a7b3c4d5e6f7"  # every /invites/{code} shares it

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/invites/(?P<code>[^/]+)$"), "GET /invites/{code}"),
)


def discord_error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"message": message, "code": code}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Discord's edge offers
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log on the state is the record."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        route, params = self._match(self.command, parts.path)
        recorded = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            route=route,
        )
        state.record(recorded)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

        fault = state.take_fault(route)
        if fault is not None:
            self._serve_fault(fault, recorded)
            return
        if route is None:
            self._send_json(recorded, *discord_error(404, 0, "404: Not Found"))
            return

        auth = self.headers.get("Authorization")
        if auth is not None:
            token = auth.removeprefix("Bot ") if auth.startswith("Bot ") else None
            if token is None or (state.tokens is not None and token not in state.tokens):
                self._send_json(recorded, *discord_error(401, 0, "401: Unauthorized"))
                return

        remaining, reset_after, allowed = state.take_rate_limit(INVITES_BUCKET)
        limit_headers = {
            "X-RateLimit-Limit": str(state.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": f"{state.now() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": INVITES_BUCKET,
        }
        if not allowed:
            retry_after = round(max(reset_after, 0.001), 3)
            limit_headers |= {"Retry-After": str(int(retry_after) + 1), "X-RateLimit-Scope": "user"}
            body = {"message": "You are being rate limited.", "retry_after": retry_after}
            self._send_json(recorded, 429, body | {"global": False, "code": 0}, limit_headers)
            return

        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        status, body = self._invite_route(state, params["code"], query)
        self._send_json(recorded, status, body, limit_headers)

    @staticmethod
    def _match(method: str, path: str) -> tuple[str | None, dict[str, str]]:
        if not path.startswith(API_PREFIX + "/"):
            return None, {}
        # Discord decodes the path before routing, so %2F is a slash to it too.
        relative = unquote(path[len(API_PREFIX) :])
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(relative)
            if match is not None and route_method == method:
                return name, match.groupdict()
        return None, {}

    def _invite_route(
        self, state: EmulatorState, code: str, query: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        with_counts = query.get("with_counts", "false").lower()
        if with_counts not in ("true", "false", "1", "0"):
            return 400, {
                "code": 50035,
                "message": "Invalid Form Body",
                "errors": {"with_counts": {"_errors": [{"code": "BOOLEAN_TYPE_COERCE"}]}},
            }
        invite = state.find_invite(code)
        if invite is None:
            return discord_error(404, 10006, "Unknown Invite")
        return 200, state.invite_body(invite, with_counts=with_counts in ("true", "1"))

    def _serve_fault(self, fault: Fault, recorded: RecordedRequest) -> None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.reset:
            # SO_LINGER 0: close with a TCP RST, as a dropped connection looks to a client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            recorded.status = -1
            return
        self._send_raw(
            recorded, fault.status, fault.body.encode(), fault.content_type, fault.headers
        )

    def _send_json(
        self,
        recorded: RecordedRequest,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._send_raw(recorded, status, json.dumps(body).encode(), "application/json", headers)

    def _send_raw(
        self,
        recorded: RecordedRequest,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None,
    ) -> None:
        recorded.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its read timeout): fine


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: EmulatorState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class DiscordEmulator:
    """Run the emulator on a background thread: ``with DiscordEmulator() as discord: ...``."""

    def __init__(
        self, state: EmulatorState | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = state or EmulatorState()
        self._server = _Server((host, port), self.state)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="discord-emulator", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What DISCORD_API_BASE_URL should be set to."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> DiscordEmulator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> DiscordEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
