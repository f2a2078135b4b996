"""The emulator's HTTP server: real sockets, Discord's paths under /api/v10, its CDN's icons."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from discord_emulator.state import EmulatorState, Fault, Guild, RecordedRequest

API_PREFIX = "/api/v10"
INVITES_BUCKET = "b6c5b1d9e5a4f0c2d1e8a7b3c4d5e6f7"  # every GET /invites/{code} shares it
MAX_AUDIT_REASON = 512
# What Cloudflare serves a banned IP: HTML, not Discord's JSON.
BAN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Access denied | discord.com used Cloudflare to "
    b"restrict access</title></head><body><h1>Error 1015</h1><p>You are being rate limited."
    b"</p></body></html>"
)
INVALID_STATUSES = frozenset({401, 403, 429})

_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(r"^/invites/(?P<code>[^/]+)$"), "GET /invites/{code}"),
    ("GET", re.compile(r"^/users/@me$"), "GET /users/@me"),
    ("GET", re.compile(r"^/oauth2/applications/@me$"), "GET /oauth2/applications/@me"),
    ("DELETE", re.compile(r"^/invites/(?P<code>[^/]+)$"), "DELETE /invites/{code}"),
    ("GET", re.compile(r"^/guilds/(?P<guild_id>[^/]+)/invites$"), "GET /guilds/{guild_id}/invites"),
    (
        "GET",
        re.compile(r"^/guilds/(?P<guild_id>[^/]+)/vanity-url$"),
        "GET /guilds/{guild_id}/vanity-url",
    ),
    ("GET", re.compile(r"^/guilds/(?P<guild_id>[^/]+)$"), "GET /guilds/{guild_id}"),
    (
        "GET",
        re.compile(r"^/guilds/(?P<guild_id>[^/]+)/scheduled-events$"),
        "GET /guilds/{guild_id}/scheduled-events",
    ),
    (
        "POST",
        re.compile(r"^/webhooks/(?P<webhook_id>[^/]+)/(?P<webhook_token>[^/]+)$"),
        "POST /webhooks/{webhook_id}/{webhook_token}",
    ),
)
# Webhooks take no bot token; everything else is the bot's.
BOT_USER = {
    "id": "1100000000000000001",
    "username": "emulator-bot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
    "flags": 0,
}
BOT_APPLICATION = {
    "id": BOT_USER["id"],
    "name": "emulator-app",
    "description": "",
    "icon": None,
    "bot_public": False,
    "bot_require_code_grant": False,
    "owner": BOT_USER | {"id": "1100000000000000002", "username": "owner", "bot": False},
    "team": None,
    "verify_key": "0" * 64,
    "flags": 0,
}
# Discord's CDN, on the same server: no token, no rate limits, only the icons guilds show.
CDN_ROUTE = "CDN /icons/{guild_id}/{file}"
_CDN_ICON = re.compile(
    r"^/icons/(?P<guild_id>[0-9]+)/(?P<hash>(a_)?[0-9a-f]{32})\.(?P<format>png|gif|webp)$"
)


def icon_gif(hash_: str) -> bytes:
    """A 1x1 GIF of the hash's colour (a browser stretches it): an animated icon's GIF."""
    colour = bytes.fromhex(hash_.removeprefix("a_")[:6])
    return (
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + colour + b"\x00\x00\x00"
        b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    )


def icon_png(hash_: str, size: int) -> bytes:
    """A square PNG, one colour from the hash: a real image, the same for the same icon."""
    red, green, blue = bytes.fromhex(hash_.removeprefix("a_")[:6])
    row = b"\x00" + bytes((red, green, blue)) * size
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))]
    chunks += [(b"IDAT", zlib.compress(row * size)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )


_UNAUTHENTICATED = frozenset({"POST /webhooks/{webhook_id}/{webhook_token}"})

Answer = tuple[int, Any]


def bucket_of(route: str, params: dict[str, str] | None = None) -> str:
    """Discord's bucket for a call: every GET /invites/{code} shares one; a guild route's
    is its own for each guild (the guild id is a major parameter)."""
    if route == "GET /invites/{code}":
        return INVITES_BUCKET
    major = (params or {}).get("guild_id", "")
    return hashlib.sha256(f"{route}|{major}".encode()).hexdigest()[:32]


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def discord_error(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"message": message, "code": code}


def invalid_form_body(field: str, error_code: str) -> tuple[int, dict[str, Any]]:
    """Discord's 400 for a bad field: code 50035, with the field's error under "errors"."""
    return 400, {
        "code": 50035,
        "message": "Invalid Form Body",
        "errors": {field: {"_errors": [{"code": error_code}]}},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Discord's edge offers
    disable_nagle_algorithm = True  # no 40 ms wait on the client's delayed ACK
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
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            recorded.body = self.rfile.read(length)
        state.record(recorded)

        if route != CDN_ROUTE and state.banned():  # a ban is discord.com's, not the CDN's
            ban_left = str(max(1, int(state.banned_until - state.now())))
            self._send_raw(
                recorded, state.ban_status, BAN_PAGE, "text/html", {"Retry-After": ban_left}
            )
            return
        fault = state.take_fault(route)
        if fault is not None:
            self._serve_fault(fault, recorded)
            return
        if route == CDN_ROUTE:
            self._cdn_icon(state, recorded, parts.path, parts.query)
            return
        if route is None:
            self._send_json(recorded, *discord_error(404, 0, "404: Not Found"))
            return

        auth = self.headers.get("Authorization")
        if auth is not None and route not in _UNAUTHENTICATED:
            token = auth.removeprefix("Bot ") if auth.startswith("Bot ") else None
            if token is None or (state.tokens is not None and token not in state.tokens):
                self._send_json(recorded, *discord_error(401, 0, "401: Unauthorized"))
                return

        if route not in _UNAUTHENTICATED:
            global_reset, within_global = state.take_global(auth or "anonymous")
            if not within_global:
                retry_after = round(max(global_reset, 0.001), 3)
                body = {"message": "You are being rate limited.", "retry_after": retry_after}
                headers = {
                    "Retry-After": str(int(retry_after) + 1),
                    "X-RateLimit-Global": "true",
                    "X-RateLimit-Scope": "global",
                }
                self._send_json(recorded, 429, body | {"global": True, "code": 0}, headers)
                return

        bucket = bucket_of(route, params)
        remaining, reset_after, reset_at, allowed = state.take_rate_limit(bucket)
        limit_headers = {
            "X-RateLimit-Limit": str(state.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": f"{reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        if not allowed:
            retry_after = round(max(reset_after, 0.001), 3)
            limit_headers |= {"Retry-After": str(int(retry_after) + 1), "X-RateLimit-Scope": "user"}
            body = {"message": "You are being rate limited.", "retry_after": retry_after}
            self._send_json(recorded, 429, body | {"global": False, "code": 0}, limit_headers)
            return

        if state.latency:
            time.sleep(state.latency)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        status, body = self._answer(route, state, params, query, recorded)
        if status == 204:
            self._send_raw(recorded, 204, b"", "application/json", limit_headers)
        else:
            self._send_json(recorded, status, body, limit_headers)

    def _answer(
        self,
        route: str,
        state: EmulatorState,
        params: dict[str, str],
        query: dict[str, str],
        recorded: RecordedRequest,
    ) -> Answer:
        if route == "GET /invites/{code}":
            return self._invite_route(state, params["code"], query)
        if route == "DELETE /invites/{code}":
            return self._delete_invite(state, params["code"], recorded.headers)
        if route in ("GET /users/@me", "GET /oauth2/applications/@me"):
            # What a library's login asks: the bot itself, and its application.
            if not recorded.headers.get("authorization"):
                return discord_error(401, 0, "401: Unauthorized")
            return 200, BOT_USER if route == "GET /users/@me" else BOT_APPLICATION
        if route == "POST /webhooks/{webhook_id}/{webhook_token}":
            return self._execute_webhook(state, recorded.body)
        guild = state.guilds.get(params["guild_id"])
        if guild is None:
            return discord_error(404, 10004, "Unknown Guild")
        # A member bot reads the guild and its events; its invites need Manage Guild.
        if route == "GET /guilds/{guild_id}":
            return 200, state.guild_body(guild, with_counts=_flag(query.get("with_counts")))
        if route == "GET /guilds/{guild_id}/scheduled-events":
            return 200, [event.body() for event in state.guild_events(guild)]
        if not guild.manage_guild:
            return discord_error(403, 50013, "Missing Permissions")
        if route == "GET /guilds/{guild_id}/invites":
            return 200, [state.invite_metadata_body(i) for i in state.guild_invites(guild)]
        return 200, self._vanity(state, guild)

    @staticmethod
    def _delete_invite(state: EmulatorState, code: str, headers: dict[str, str]) -> Answer:
        raw_reason = headers.get("x-audit-log-reason")
        reason = unquote(raw_reason) if raw_reason is not None else None
        if reason is not None and len(reason) > MAX_AUDIT_REASON:
            return invalid_form_body("reason", "BASE_TYPE_MAX_LENGTH")
        invite = state.find_invite(code)
        if invite is None:
            return discord_error(404, 10006, "Unknown Invite")
        guild = state.guilds[invite.guild_id]
        if not guild.may_delete(invite.channel["id"]):
            return discord_error(403, 50013, "Missing Permissions")
        body = state.invite_body(invite, with_counts=False)
        state.delete_invite(code, reason, raw_reason)
        return 200, body

    @staticmethod
    def _vanity(state: EmulatorState, guild: Guild) -> dict[str, Any]:
        stored = state.invites.get(guild.vanity_url_code or "")
        return {"code": guild.vanity_url_code, "uses": stored.uses if stored else 0}

    @staticmethod
    def _execute_webhook(state: EmulatorState, body: bytes) -> Answer:
        try:
            message = json.loads(body)
        except ValueError:
            return discord_error(400, 50109, "The request body contains invalid JSON.")
        if not isinstance(message, dict) or not message.get("content"):
            return discord_error(400, 50006, "Cannot send an empty message")
        with state.lock:
            state.webhook_messages.append(message)
        return 204, None

    def _cdn_icon(
        self, state: EmulatorState, recorded: RecordedRequest, path: str, query: str
    ) -> None:
        """A guild's current icon, as Discord's CDN serves it (a 404 for any other)."""
        match = _CDN_ICON.match(path)
        guild = state.guilds.get(match["guild_id"]) if match else None
        if match is None or guild is None or guild.icon != match["hash"]:
            self._send_raw(recorded, 404, b"Not Found", "text/plain", None)
            return
        size_text = (parse_qs(query).get("size") or ["128"])[-1]
        size = int(size_text) if size_text.isdigit() else 0
        if size not in {2**n for n in range(4, 13)}:
            self._send_raw(recorded, 400, b"Bad size", "text/plain", None)
            return
        if match["format"] == "gif":
            self._send_raw(recorded, 200, icon_gif(match["hash"]), "image/gif", None)
        else:  # a PNG for a still, WebP or not: what the proxy asks is a PNG
            self._send_raw(recorded, 200, icon_png(match["hash"], size), "image/png", None)

    @staticmethod
    def _match(method: str, path: str) -> tuple[str | None, dict[str, str]]:
        if method == "GET" and path.startswith("/icons/"):
            return CDN_ROUTE, {}
        if not path.startswith(API_PREFIX + "/"):
            return None, {}
        # Discord decodes the path before routing, so %2F is a slash to it too.
        relative = unquote(path[len(API_PREFIX) :])
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(relative)
            if match is not None and route_method == method:
                return name, match.groupdict()
        return None, {}

    @staticmethod
    def _invite_route(state: EmulatorState, code: str, query: dict[str, str]) -> Answer:
        with_counts = query.get("with_counts", "false").lower()
        if with_counts not in ("true", "false", "1", "0"):
            return invalid_form_body("with_counts", "BOOLEAN_TYPE_COERCE")
        invite = state.find_invite(code)
        if invite is None:
            return discord_error(404, 10006, "Unknown Invite")
        event_id = query.get("guild_scheduled_event_id")
        if event_id is not None and not event_id.isdigit():
            return invalid_form_body("guild_scheduled_event_id", "NUMBER_TYPE_COERCE")
        return 200, state.invite_body(
            invite, with_counts=with_counts in ("true", "1"), event_id=event_id
        )

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
        body: Any,
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
        if status in INVALID_STATUSES and (headers or {}).get("X-RateLimit-Scope") != "shared":
            self.server.state.count_invalid()
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

    @property
    def cdn_url(self) -> str:
        """What DISCORD_CDN_URL should be set to."""
        return f"http://127.0.0.1:{self.port}"

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
