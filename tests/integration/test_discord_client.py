"""The Discord adapter against the emulator over real HTTP: requests sent, errors mapped."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy.adapters.discord.client import DiscordClient
from invite_proxy.adapters.discord.routes import Route
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import (
    DiscordBlocked,
    DiscordError,
    DiscordMissingPermissions,
    DiscordRateLimited,
    DiscordServerError,
    DiscordTimeout,
    DiscordUnauthorized,
    DiscordUnavailable,
    InviteProxyError,
    UnknownInvite,
)
from invite_proxy.domain.payloads import DiscordResponse
from invite_proxy.edges.settings import ApiSettings
from tests.conftest import BOT_TOKEN, closed_port

CLOUDFLARE_HTML = "<!DOCTYPE html><html><body>Error 1015 You are being rate limited</body></html>"


class Client(DiscordClient):
    deadline: Deadline = NO_DEADLINE  # what each call is made within

    def get_invite(self, code: str, params: dict[str, str]) -> DiscordResponse:
        return self.request(Route.get_invite(code), params=params, deadline=self.deadline)


def client_for(
    base_url: str,
    token: str | None = BOT_TOKEN,
    read_timeout: float = 2.0,
    deadline: Deadline | None = None,
) -> Client:
    client = Client(
        base_url=base_url,
        token=lambda _deadline: token,
        user_agent=ApiSettings.from_env({"CACHE_TABLE_NAME": "x-table"}).user_agent,
        connect_timeout=0.5,
        read_timeout=read_timeout,
    )
    client.deadline = deadline or NO_DEADLINE
    return client


def test_get_invite_sends_token_user_agent_and_params(
    emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="hello-1")
    response = client_for(emulator.base_url).get_invite(
        "hello-1", {"with_counts": "true", "guild_scheduled_event_id": "42"}
    )
    assert response.status == 200
    assert response.payload["code"] == "hello-1"
    assert response.payload["approximate_member_count"] == 42
    assert json.loads(response.body) == response.payload
    [sent] = emulator.state.requests_to("GET /invites/{code}")
    assert sent.headers["authorization"] == f"Bot {BOT_TOKEN}"
    assert sent.headers["user-agent"].startswith("DiscordBot (https://")
    assert sent.query == "with_counts=true&guild_scheduled_event_id=42"


def test_code_is_percent_encoded_so_it_cannot_change_the_path(emulator: DiscordEmulator) -> None:
    with pytest.raises(InviteProxyError):
        client_for(emulator.base_url).get_invite("../guilds/1", {})
    [sent] = emulator.state.requests
    assert sent.path == "/api/v10/invites/..%2Fguilds%2F1"


def test_body_is_passed_on_byte_for_byte(emulator: DiscordEmulator) -> None:
    body = '{"code":"raw-1","expires_at":null,   "zzz_new":{"n":1.50}, "ü":"✓"}'
    emulator.state.inject(Fault(status=200, body=body))
    assert client_for(emulator.base_url).get_invite("raw-1", {}).body == body


def discord_json(status: int, code: int, message: str, **extra: object) -> Fault:
    return Fault(status=status, body=json.dumps({"code": code, "message": message, **extra}))


@pytest.mark.parametrize(
    ("fault", "expected", "public_status"),
    [
        (discord_json(404, 10006, "Unknown Invite"), UnknownInvite, None),
        (discord_json(403, 50013, "Missing Permissions"), DiscordMissingPermissions, 403),
        (discord_json(403, 50001, "Missing Access"), DiscordMissingPermissions, 403),
        (discord_json(401, 0, "401: Unauthorized"), DiscordUnauthorized, 401),
        (discord_json(401, 40001, "Unauthorized"), DiscordUnauthorized, 401),
        (discord_json(403, 40333, "internal network error"), DiscordBlocked, 403),
        (Fault(status=403, body=CLOUDFLARE_HTML, content_type="text/html"), DiscordBlocked, 403),
        (Fault(status=429, body=CLOUDFLARE_HTML, content_type="text/html"), DiscordBlocked, 429),
        (discord_json(503, 130000, "API resource overloaded"), DiscordUnavailable, 503),
        (Fault(status=500), DiscordServerError, 500),
        (Fault(status=502, body="bad gateway", content_type="text/plain"), DiscordServerError, 502),
        (discord_json(400, 50035, "Invalid Form Body"), DiscordError, 400),
        (
            Fault(status=200, body="<html>not json</html>", content_type="text/html"),
            DiscordError,
            200,
        ),
    ],
)
def test_discord_errors_map_to_typed_exceptions(
    emulator: DiscordEmulator,
    fault: Fault,
    expected: type[InviteProxyError],
    public_status: int | None,
) -> None:
    emulator.state.inject(fault)
    with pytest.raises(expected) as caught:
        client_for(emulator.base_url).get_invite("abc", {})
    assert type(caught.value) is expected
    if public_status is not None:
        assert getattr(caught.value, "status", None) == public_status
    assert BOT_TOKEN not in str(caught.value)


def test_rate_limit_carries_retry_after_global_scope_and_bucket(emulator: DiscordEmulator) -> None:
    emulator.state.inject(
        Fault(
            status=429,
            body=json.dumps(
                {
                    "message": "You are being rate limited.",
                    "retry_after": 1.25,
                    "global": True,
                    "code": 0,
                }
            ),
            headers={"Retry-After": "2", "X-RateLimit-Scope": "global", "X-RateLimit-Bucket": "b1"},
        )
    )
    with pytest.raises(DiscordRateLimited) as caught:
        client_for(emulator.base_url).get_invite("abc", {})
    error = caught.value
    assert error.rate_limit is not None
    assert (error.retry_after, error.is_global, error.discord_scope, error.rate_limit.bucket) == (
        1.25,
        True,
        "global",
        "b1",
    )


def test_emulator_rate_limit_is_reported_with_shared_bucket(emulator: DiscordEmulator) -> None:
    emulator.state.rate_limit = 1
    emulator.state.rate_window = 30
    client = client_for(emulator.base_url)
    with pytest.raises(UnknownInvite):
        client.get_invite("first", {})
    with pytest.raises(DiscordRateLimited) as caught:
        client.get_invite("second", {})  # another code, same bucket
    assert caught.value.discord_scope == "user"
    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 30


def test_wrong_token_is_unauthorized(emulator: DiscordEmulator) -> None:
    with pytest.raises(DiscordUnauthorized):
        client_for(emulator.base_url, token="wrong").get_invite("abc", {})


def test_read_timeout(emulator: DiscordEmulator) -> None:
    emulator.state.inject(Fault(status=200, body="{}", delay=1.0))
    with pytest.raises(DiscordTimeout):
        client_for(emulator.base_url, read_timeout=0.2).get_invite("abc", {})


def test_a_call_never_waits_past_the_requests_deadline(emulator: DiscordEmulator) -> None:
    emulator.state.add_invite(emulator.state.add_guild("G"), code="late-1")
    emulator.state.inject(Fault(status=200, body='{"code": "late-1"}', delay=1.0))
    deadline = Deadline.from_remaining_ms(300, reserve=0.0)  # well inside the 2 s read timeout
    with pytest.raises(DiscordTimeout):  # it would have had its answer after 1 s
        client_for(emulator.base_url, deadline=deadline).get_invite("late-1", {})
    deadline = Deadline.from_remaining_ms(0, reserve=0.0)
    with pytest.raises(DiscordTimeout, match="no time left"):
        client_for(emulator.base_url, deadline=deadline).get_invite("late-1", {})
    assert len(emulator.state.requests) == 1  # the second was never sent


@pytest.fixture
def trickling() -> Iterator[str]:
    """A server that answers 200 at once, then sends its body one byte every 0.1 s: each
    read finishes well inside any read timeout, and the whole takes seconds."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            body = b'{"code": "trickle"}' + b" " * 100
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            for byte in body:
                if stop.wait(0.1):
                    return
                conn.sendall(bytes([byte]))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v10"
    stop.set()
    listener.close()
    thread.join(timeout=2)


def test_a_body_that_trickles_in_cannot_hold_a_call_past_the_deadline(trickling: str) -> None:
    # Per-read timeouts never fire here: only a timer over the whole call can stop it.
    deadline = Deadline.from_remaining_ms(500, reserve=0.0)
    started = time.monotonic()
    with pytest.raises(DiscordTimeout, match="no answer within"):
        client_for(trickling, read_timeout=1.0, deadline=deadline).get_invite("trickle", {})
    assert time.monotonic() - started < 0.5 + 0.2


def test_connection_reset(emulator: DiscordEmulator) -> None:
    emulator.state.inject(Fault(reset=True))
    with pytest.raises(DiscordUnavailable) as caught:
        client_for(emulator.base_url).get_invite("abc", {})
    assert type(caught.value) is DiscordUnavailable


def test_connection_refused() -> None:
    with pytest.raises(DiscordUnavailable) as caught:
        client_for(f"http://127.0.0.1:{closed_port()}/api/v10").get_invite("abc", {})
    assert type(caught.value) is DiscordUnavailable
