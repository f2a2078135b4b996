"""The fault matrix: each dependency failing, one row at a time, through the real handler.

Every row loads the API handler as Lambda would (its module, its settings, its
clients) and invokes it with an API Gateway event, against the Discord emulator
over real HTTP and DynamoDB through moto's server, or against a stand-in for the
failing dependency: a port nothing listens on, a server that accepts and never
answers, or one that answers DynamoDB's throttling errors. Each row asserts
three things: what the client gets, what is logged (one line at warning or
above, at the right level, and no secret anywhere), and that nothing is lost.

``docs/faults.md`` is generated from these rows: ``make faults-doc`` writes it,
and the suite fails when the committed table and the rows disagree.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy.admin_tokens import entry_for
from invite_proxy.settings import RevokerSettings
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template
from tests.conftest import BOT_TOKEN, closed_port
from tests.e2e.test_deadlines import HangingServer

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "faults.md"
EVENTS = REPO / "events"
ADMIN_TOKEN = "dip_matrix-admin-token-5c7e"
CODE = "fault-1"
TIMEOUT = 10  # ApiFunction's, as template.yaml sets it
RATE_LIMITED = '{"message": "You are being rate limited.", "retry_after": 30.0, "global": %s}'
CLOUDFLARE = "<!DOCTYPE html><html><body>Error 1015: You are being rate limited</body></html>"
MISSING_PERMISSIONS = '{"message": "Missing Permissions", "code": 50013}'


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


@dataclass
class Ctx:
    """What a row can point the function at."""

    moto: str
    table: str
    emulator: DiscordEmulator
    hanging: HangingServer
    refusing: str = field(default_factory=lambda: f"http://127.0.0.1:{closed_port()}")
    servers: list[ThrottlingServer] = field(default_factory=list)

    def throttling(self, error: str) -> str:
        server = ThrottlingServer(error)
        self.servers.append(server)
        return server.url


@dataclass(frozen=True)
class Row:
    layer: str
    fault: str
    request: str  # "GET" or "DELETE", or "a rule run" (the revoker, invoked by its schedule)
    status: int  # what the client gets (a rule run: 200 for its summary)
    error_code: str | None
    logged: tuple[str, str] | None  # (level, message): the one line at WARNING or above
    lost: str  # what "nothing is lost" means here, for the table
    discord: tuple[Fault, ...] = ()
    env: Callable[[Ctx], dict[str, str]] = lambda _: {}
    keep: Callable[[Ctx, dict[str, Any], list[logging.LogRecord]], None] = lambda *_: None
    timeout: int = TIMEOUT  # the invocation's
    # Run first, with the loaded function: what came before the fault.
    before: Callable[[Ctx, Callable[[dict[str, Any]], Any]], None] = lambda *_: None

    @property
    def id(self) -> str:
        return f"{self.layer}: {self.fault}"


Records = list[logging.LogRecord]


def _no_copy_cached(ctx: Ctx, *_: Any) -> None:
    """A failure is never cached: neither as the invite nor as an unknown one."""
    items = boto3.client("dynamodb", endpoint_url=ctx.moto).query(
        TableName=ctx.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"invite#{CODE}"}},
    )["Items"]
    assert [i for i in items if i["sk"]["S"].startswith("variant#")] == []


def _audited(outcome: str) -> Callable[[Ctx, dict[str, Any], Records], None]:
    def check(ctx: Ctx, answer: dict[str, Any], records: Records) -> None:
        _no_copy_cached(ctx)  # whatever the outcome, no cached copy survives a DELETE
        [audit] = [
            r.audit  # type: ignore[attr-defined]
            for r in records
            if r.getMessage() == "invite revocation"
        ]
        assert (audit["outcome"], audit["code"], audit["actor"]) == (outcome, CODE, "dashboard")
        assert audit["cache_evicted"] is True

    return check


def _forbidden_and_kept(ctx: Ctx, answer: dict[str, Any], records: Records) -> None:
    assert ctx.emulator.state.find_invite(CODE) is not None  # as the 403 says
    _audited("forbidden")(ctx, answer, records)


def _answered_not_cached(ctx: Ctx, answer: dict[str, Any], records: Records) -> None:
    _served_from_discord(ctx, answer, records)
    _no_copy_cached(ctx)
    assert "not cached: revoked while fetching" in [r.getMessage() for r in records]


def _stopped_before_the_deadline(ctx: Ctx, answer: dict[str, Any], _: Records) -> None:
    summary = json.loads(answer["body"])
    assert (summary["stopped"], summary["revoked"], summary["left"]) == ("deadline", 1, 1)
    assert ctx.emulator.state.find_invite(CODE) is None
    assert ctx.emulator.state.find_invite("fault-2") is not None  # the next run's


def _with_a_second_invite(ctx: Ctx, _: Callable[[dict[str, Any]], Any]) -> None:
    [guild] = ctx.emulator.state.guilds.values()
    ctx.emulator.state.add_invite(guild, code="fault-2")
    ctx.emulator.state.latency = 1.0  # each Discord call takes 1 s of the invocation's time


def _no_discord_call(ctx: Ctx, *_: Any) -> None:
    assert ctx.emulator.state.requests == []


def _no_call_after_the_token_failed(ctx: Ctx, *_: Any) -> None:
    assert [r.path for r in ctx.emulator.state.requests] == ["/api/v10/invites/warm-1"]


def _token_secret(ctx: Ctx, value: str) -> dict[str, str]:
    name = f"bot-token-{uuid.uuid4().hex[:10]}"
    boto3.client("secretsmanager", endpoint_url=ctx.moto).create_secret(
        Name=name, SecretString=value
    )
    return {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": ctx.moto,
        "DISCORD_TOKEN_SECRET_ID": name,
        "TOKEN_CACHE_SECONDS": "0",
    }


def _warm_then_lose_the_secret(ctx: Ctx, invoke: Callable[[dict[str, Any]], Any]) -> None:
    """An earlier miss read the token; then the secret became unreadable."""
    [guild] = ctx.emulator.state.guilds.values()
    ctx.emulator.state.add_invite(guild, code="warm-1")
    assert invoke(_event("GET", "warm-1"))["statusCode"] == 200
    boto3.client("secretsmanager", endpoint_url=ctx.moto).delete_secret(
        SecretId=os.environ["DISCORD_TOKEN_SECRET_ID"], ForceDeleteWithoutRecovery=True
    )


def _revoked_while_fetching(ctx: Ctx, _: Callable[[dict[str, Any]], Any]) -> None:
    """A DELETE elsewhere marks the code revoked after this lookup's fetch began."""
    boto3.client("dynamodb", endpoint_url=ctx.moto).put_item(
        TableName=ctx.table,
        Item={
            "pk": {"S": f"invite#{CODE}"},
            "sk": {"S": "revoked"},
            "revoked_at": {"N": str(time.time() + 60)},
            "ttl": {"N": str(int(time.time()) + 3600)},
        },
    )


def _served_from_discord(ctx: Ctx, answer: dict[str, Any], _: Records) -> None:
    assert json.loads(answer["body"])["code"] == CODE


SWEEP = "a rule run"
_SWEEP_SETTINGS = {"CACHE_TABLE_NAME": "matrix", "DYNAMODB_TIMEOUT": "0.05"}
NO_RETRIES = {"UPSTREAM_RETRIES": "0"}
UPSTREAM_ERROR = ("WARNING", "upstream error")
TABLE_DOWN = ("WARNING", "table circuit open")
NOT_CACHED = "the failure is not cached, as the invite or as unknown"


def _discord(fault: str, status: int, code: str, *faults: Fault, **env: str) -> Row:
    return Row(
        "Discord",
        fault,
        "GET",
        status,
        code,
        UPSTREAM_ERROR,
        NOT_CACHED,
        discord=faults,
        env=lambda _: {**NO_RETRIES, **env},
        keep=_no_copy_cached,
    )


def _table(fault: str, endpoint: Callable[[Ctx], str], **env: str) -> Row:
    return Row(
        "DynamoDB",
        fault,
        "GET",
        200,
        None,
        TABLE_DOWN,
        "the lookup is answered from Discord",
        env=lambda ctx: {"AWS_ENDPOINT_URL_DYNAMODB": endpoint(ctx), **env},
        keep=_served_from_discord,
    )


ROWS = [
    _discord(
        "slow past the timeout",
        504,
        "upstream_timeout",
        Fault(status=200, body="{}", delay=1.5),
        DISCORD_READ_TIMEOUT="0.5",
    ),
    _discord("500", 502, "upstream_error", Fault(status=500)),
    _discord("502", 502, "upstream_error", Fault(status=502)),
    _discord("503", 502, "upstream_error", Fault(status=503)),
    _discord("connection reset", 503, "upstream_unavailable", Fault(reset=True)),
    _discord(
        "truncated JSON", 502, "upstream_error", Fault(status=200, body='{"code": "fault-1", "gu')
    ),
    _discord(
        "an HTML error page",
        502,
        "upstream_error",
        Fault(status=502, body="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html"),
    ),
    _discord(
        "429 with JSON, per route",
        429,
        "rate_limited",
        Fault(status=429, body=RATE_LIMITED % "false", headers={"X-RateLimit-Scope": "user"}),
    ),
    _discord(
        "429 with JSON, global",
        429,
        "rate_limited",
        Fault(
            status=429,
            body=RATE_LIMITED % "true",
            headers={"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"},
        ),
    ),
    _discord(
        "429 without JSON (a ban)",
        503,
        "upstream_blocked",
        Fault(status=429, body=CLOUDFLARE, content_type="text/html"),
    ),
    _discord(
        "401 on a revoked token",
        502,
        "upstream_unauthorized",
        Fault(status=401, body='{"message": "401: Unauthorized", "code": 0}'),
    ),
    _discord(
        "403 50013 on a lookup",
        502,
        "upstream_missing_permissions",
        Fault(status=403, body=MISSING_PERMISSIONS),
    ),
    Row(
        "Discord",
        "403 50013 on a DELETE",
        "DELETE",
        403,
        "missing_permissions",
        UPSTREAM_ERROR,
        "the invite is still on Discord, the audit line says forbidden, no copy is cached",
        discord=(Fault(status=403, body=MISSING_PERMISSIONS, route="DELETE /invites/{code}"),),
        keep=_forbidden_and_kept,
    ),
    _table("refusing connections", lambda ctx: ctx.refusing),
    _table("hanging", lambda ctx: ctx.hanging.url, DYNAMODB_TIMEOUT="0.5"),
    _table(
        "ProvisionedThroughputExceededException",
        lambda ctx: ctx.throttling("ProvisionedThroughputExceededException"),
    ),
    _table("ThrottlingException", lambda ctx: ctx.throttling("ThrottlingException")),
    Row(
        "Secrets Manager",
        "unavailable at cold start",
        "GET",
        503,
        "credentials_unavailable",
        ("WARNING", "upstream call not made"),
        "no call reaches Discord without the token",
        env=lambda ctx: {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": ctx.refusing,
            "DISCORD_TOKEN_SECRET_ID": "discord-invite-proxy/bot-token",
        },
        keep=_no_discord_call,
    ),
    Row(
        "Secrets Manager",
        "hanging",
        "GET",
        503,
        "credentials_unavailable",
        ("WARNING", "upstream call not made"),
        "no call reaches Discord without the token, and the answer comes in time",
        env=lambda ctx: {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": ctx.hanging.url,
            "DISCORD_TOKEN_SECRET_ID": "discord-invite-proxy/bot-token",
        },
        keep=_no_discord_call,
        timeout=4,  # the read is waited for until the deadline: keep the test short
    ),
    Row(
        "Secrets Manager",
        "unavailable at a later token re-read",
        "GET",
        503,
        "credentials_unavailable",
        ("WARNING", "upstream call not made"),
        "no call reaches Discord once the token is unreadable",
        env=lambda ctx: _token_secret(ctx, BOT_TOKEN),
        before=_warm_then_lose_the_secret,
        keep=_no_call_after_the_token_failed,
    ),
    Row(
        "Secrets Manager",
        "a secret holding the wrong shape (JSON, not the raw token)",
        "GET",
        503,
        "credentials_unavailable",
        ("WARNING", "upstream call not made"),
        "the malformed token never reaches Discord, so it earns no 401",
        env=lambda ctx: _token_secret(ctx, json.dumps({"token": BOT_TOKEN})),
        keep=_no_discord_call,
    ),
    Row(
        "DynamoDB",
        "a conditional-write race: revoked while the lookup was fetching",
        "GET",
        200,
        None,
        None,
        "what Discord said is answered, but not cached over the revocation",
        before=_revoked_while_fetching,
        keep=_answered_not_cached,
    ),
    Row(
        "Lambda",
        "the deadline reached mid-lookup (Discord slower than the invocation)",
        "GET",
        504,
        "upstream_timeout",
        UPSTREAM_ERROR,
        NOT_CACHED + ", and the answer comes in time",
        discord=(Fault(status=200, body="{}", delay=8.0),),
        env=lambda _: {"DISCORD_READ_TIMEOUT": "20", "LOOKUP_DEADLINE_SECONDS": "28"},
        keep=_no_copy_cached,
        timeout=4,
    ),
    Row(
        "Lambda",
        "the deadline reached mid-sweep",
        SWEEP,
        200,
        None,
        None,
        "the run stops while a step's worst case still fits: the rest is left for the next run",
        env=lambda _: {"DYNAMODB_TIMEOUT": "0.05"},
        before=_with_a_second_invite,
        keep=_stopped_before_the_deadline,
        # Beyond the reserve, time for one lookup and DELETE (1 s each) and a lookup: the
        # second DELETE would start with less than the reserve left.
        timeout=int(RevokerSettings.from_env(_SWEEP_SETTINGS).reserve_seconds) + 3,
    ),
    Row(
        "Lambda",
        "the deadline reached mid-DELETE",
        "DELETE",
        504,
        "upstream_timeout",
        UPSTREAM_ERROR,
        "the Discord call keeps time back for the eviction: no cached copy survives, the "
        "audit line says failed, and the answer comes in time",
        discord=(Fault(status=200, body="{}", delay=12.0, route="DELETE /invites/{code}"),),
        env=lambda _: {"DISCORD_READ_TIMEOUT": "20"},
        keep=_audited("failed"),
    ),
]


def render(rows: list[Row]) -> str:
    lines = [
        "# What happens when a dependency fails",
        "",
        "Generated from `tests/e2e/test_fault_matrix.py` (`make faults-doc`); every row is a",
        "passing test. Each row invokes the API handler (or the revoker) as Lambda would,",
        "with one fault.",
        "Logged: the one line at warning or above. No row logs or answers a secret.",
        "",
        "| layer | fault | request | the client gets | logged | nothing is lost |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        answer = f"{row.status}" + (f" `{row.error_code}`" if row.error_code else "")
        request = f"`{row.request} /invites/{{code}}`"
        if row.request == SWEEP:
            answer, request = "its summary, `stopped: deadline`", "a rule run (the revoker)"
        logged = f"{row.logged[0]} `{row.logged[1]}`" if row.logged else "nothing"
        lines.append(
            f"| {row.layer} | {row.fault} | {request} | {answer} | {logged} | {row.lost} |"
        )
    return "\n".join(lines) + "\n"


def test_the_fault_table_is_generated_from_the_rows() -> None:
    if os.environ.get("WRITE_FAULTS_DOC"):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(render(ROWS))
    assert DOC.read_text() == render(ROWS), "docs/faults.md is stale: run make faults-doc"


@pytest.fixture
def ctx(moto_endpoint: str, table_name: str, emulator: DiscordEmulator) -> Iterator[Ctx]:
    hanging = HangingServer()
    context = Ctx(moto_endpoint, table_name, emulator, hanging)
    yield context
    hanging.close()
    for server in context.servers:
        server.close()


def _event(request: str, code: str = CODE) -> dict[str, Any]:
    if request == SWEEP:
        return {"name": "matrix-sweep", "codes": [code, "fault-2"]}
    name = "get_invite.json" if request == "GET" else "delete_invite.json"
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event["rawPath"] = f"/invites/{code}"
    event["pathParameters"] = {"code": code}
    event["requestContext"]["http"]["path"] = f"/invites/{code}"
    if "authorization" in event["headers"]:  # the admin's own token rides on a DELETE
        event["headers"]["authorization"] = f"Bearer {ADMIN_TOKEN}"
    return event


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_fault(
    row: Row,
    ctx: Ctx,
    template: Template,
    guild: Guild,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ctx.emulator.state.add_invite(guild, code=CODE)
    for fault in row.discord:
        ctx.emulator.state.inject(fault)
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=ctx.moto,
        CACHE_TABLE_NAME=ctx.table,
        DISCORD_API_BASE_URL=ctx.emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        ADMIN_TOKENS=json.dumps({"tokens": [entry_for("matrix", ADMIN_TOKEN)]}),
    )
    os.environ.update(row.env(ctx))
    caplog.set_level(logging.INFO)
    function = "RevokerFunction" if row.request == SWEEP else "ApiFunction"
    environment = ExecutionEnvironment(template.functions()[function])
    row.before(ctx, environment.invoke)
    context = LambdaContext(function, 512, timeout_seconds=row.timeout)

    answer: dict[str, Any] = environment.invoke(_event(row.request), context)

    # What the client gets: the status, and the JSON error envelope with its code.
    if row.request == SWEEP:
        answer = {"statusCode": 200, "body": json.dumps(answer)}
    assert answer["statusCode"] == row.status, answer
    if row.error_code:
        assert json.loads(answer["body"])["error"]["code"] == row.error_code
    if row.status in (429, 503):
        assert int(answer["headers"]["Retry-After"]) >= 1  # and when to come back
    assert context.get_remaining_time_in_millis() >= 500  # answered in time
    # What is logged: one line at warning or above, at the right level.
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    said = [(r.levelname, r.getMessage().split(":")[0]) for r in loud]
    assert said == ([row.logged] if row.logged else []), said
    # No secret, anywhere: every log line with all its fields, and the answer.
    lines = [json.dumps(r.__dict__, default=str) for r in caplog.records]
    everything = "\n".join(lines) + capsys.readouterr().out + json.dumps(answer)
    for secret in (BOT_TOKEN, ADMIN_TOKEN):
        assert secret not in everything
    # Nothing lost.
    row.keep(ctx, answer, caplog.records)
