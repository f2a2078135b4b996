"""The fault matrix: each dependency failing, one row at a time, through the real handler.

Every row loads the API handler as Lambda would (its module, its settings, its
clients) and invokes it with an API Gateway event, against the Discord emulator
over real HTTP and DynamoDB through moto's server, or against a stand-in for the
failing dependency: a port nothing listens on, a server that accepts and never
answers, or one that answers DynamoDB's throttling errors. Each row asserts
three things: what the client gets, what is logged (one line at warning or
above, at the right level, and no secret anywhere), and that nothing is lost:
a list of checks, each of which says what it shows, so the table's last column
is what was checked, not prose.

``docs/faults.md`` is generated from these rows: ``make faults-doc`` writes it,
and the suite fails when the committed table and the rows disagree.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy.domain.admin_tokens import entry_for
from invite_proxy.domain.costs import ANSWER_RESERVE_SECONDS, REPORTING_SECONDS
from invite_proxy.domain.errors import RuleRunFailed
from invite_proxy.edges.settings import RevokerSettings
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template
from tests.conftest import BOT_TOKEN, closed_port
from tests.stand_ins import HangingServer, Relay, ThrottlingServer

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "faults.md"
EVENTS = REPO / "events"
ADMIN_TOKEN = "dip_matrix-admin-token-5c7e"
CODE = "fault-1"
NEXT = "fault-next"  # a lookup after the fault, of a code not asked for before
TIMEOUT = 10  # ApiFunction's, as template.yaml sets it
RATE_LIMITED = '{"message": "You are being rate limited.", "retry_after": 30.0, "global": %s}'
CLOUDFLARE = "<!DOCTYPE html><html><body>Error 1015: You are being rate limited</body></html>"
MISSING_PERMISSIONS = '{"message": "Missing Permissions", "code": 50013}'


@dataclass
class Ctx:
    """What a row can point the function at."""

    moto: str
    table: str
    emulator: DiscordEmulator
    hanging: HangingServer
    relay: Relay  # to moto's server, until a row cuts it or makes it hang
    cached: bool = False  # a copy of the invite was cached before the fault
    refusing: str = field(default_factory=lambda: f"http://127.0.0.1:{closed_port()}")
    servers: list[ThrottlingServer] = field(default_factory=list)

    def throttling(self, error: str) -> str:
        server = ThrottlingServer(error)
        self.servers.append(server)
        return server.url


Invoke = Callable[[dict[str, Any]], Any]


@dataclass
class Seen:
    """What a row's invocation left: its answer and logs, and the function, still loaded."""

    ctx: Ctx
    row: Row
    answer: dict[str, Any]
    records: list[logging.LogRecord]
    invoke: Invoke  # the same execution environment, for what comes next
    another: Callable[[], Invoke]  # a second execution environment of the same function


@dataclass(frozen=True)
class Check:
    """One thing "nothing is lost" means for a row: what it shows, and the check itself."""

    says: str
    verify: Callable[[Seen], None]


@dataclass(frozen=True)
class Row:
    layer: str
    fault: str
    request: str  # "GET" or "DELETE", or "a rule run" (the revoker, invoked by its schedule)
    status: int  # what the client gets (a rule run: 200 for its summary, 500 when it fails)
    error_code: str | None
    logged: tuple[tuple[str, str], ...]  # (level, message): each line at WARNING or above
    keep: tuple[Check, ...]  # nothing is lost
    discord: tuple[Fault, ...] = ()
    env: Callable[[Ctx], dict[str, str]] = lambda _: {}
    timeout: float = TIMEOUT  # the invocation's
    # Run first, with the loaded function: what came before the fault.
    before: Callable[[Ctx, Invoke], None] = lambda *_: None
    summary: tuple[tuple[str, object], ...] = ()  # a rule run's: fields it must say

    @property
    def id(self) -> str:
        return f"{self.layer}: {self.fault}: {self.request}"


# -- what "nothing is lost" checks -------------------------------------------------------


def _copies(ctx: Ctx, code: str = CODE) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb", endpoint_url=ctx.moto).query(
        TableName=ctx.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"invite#{code}"}},
    )["Items"]
    return [i for i in items if i["sk"]["S"].startswith("variant#")]


def _nothing_cached(seen: Seen) -> None:
    assert _copies(seen.ctx) == []


def _no_copy_survives(seen: Seen) -> None:
    assert seen.ctx.cached  # there was one to evict
    _nothing_cached(seen)


NOT_CACHED = Check("the failure is not cached, as the invite or as unknown", _nothing_cached)
NO_COPY_SURVIVES = Check("the copy cached before is evicted", _no_copy_survives)


def _from_discord(seen: Seen) -> None:
    assert json.loads(seen.answer["body"])["code"] == CODE
    assert len(seen.ctx.emulator.state.requests_to("GET /invites/{code}")) == 1


FROM_DISCORD = Check("the lookup is answered from Discord", _from_discord)


def _refused_unsent(seen: Seen, invoke: Invoke) -> None:
    sent = len(seen.ctx.emulator.state.requests)
    answer = invoke(_event("GET", NEXT))
    assert answer["statusCode"] == seen.row.status, answer
    assert json.loads(answer["body"])["error"]["code"] == seen.row.error_code
    assert len(seen.ctx.emulator.state.requests) == sent  # held back, not sent


def _kept_by_the_fleet(seen: Seen) -> None:
    _refused_unsent(seen, seen.invoke)
    _refused_unsent(seen, seen.another())


KEPT_BY_FLEET = Check(
    "the block is kept: the next lookup, on this instance or another, gets the same answer "
    "without a call to Discord",
    _kept_by_the_fleet,
)
KEPT_BY_INSTANCE = Check(
    "the instance keeps the block itself: its next lookup gets the same answer without a "
    "call to Discord",
    lambda seen: _refused_unsent(seen, seen.invoke),
)


def _no_discord_call(seen: Seen) -> None:
    assert seen.ctx.emulator.state.requests == []


NO_CALL = Check("no call reaches Discord: no token, no call (so no 401 either)", _no_discord_call)


def _no_call_after_the_token_failed(seen: Seen) -> None:
    assert [r.path for r in seen.ctx.emulator.state.requests] == ["/api/v10/invites/warm-1"]


NO_CALL_ONCE_UNREADABLE = Check(
    "no call reaches Discord once the token is unreadable", _no_call_after_the_token_failed
)


def _not_cached_over_the_revocation(seen: Seen) -> None:
    _from_discord(seen)
    _nothing_cached(seen)
    assert "not cached: revoked while fetching" in [r.getMessage() for r in seen.records]


NOT_CACHED_OVER_REVOCATION = Check(
    "what Discord said is answered, but not cached over the revocation",
    _not_cached_over_the_revocation,
)


def _audit(seen: Seen) -> dict[str, Any]:
    [audit] = [
        r.audit  # type: ignore[attr-defined]
        for r in seen.records
        if r.getMessage() == "invite revocation"
    ]
    return audit  # type: ignore[no-any-return]


def audited(outcome: str, *, evicted: bool) -> Check:
    def verify(seen: Seen) -> None:
        audit = _audit(seen)
        assert (audit["outcome"], audit["code"]) == (outcome, CODE)
        assert audit["cache_evicted"] is evicted

    return Check(
        f"the audit line says {outcome}, cache {'evicted' if evicted else 'not evicted'}",
        verify,
    )


def _still_on_discord(seen: Seen) -> None:
    assert seen.ctx.emulator.state.find_invite(CODE) is not None


STILL_ON_DISCORD = Check("the invite is still on Discord", _still_on_discord)


def _left_for_the_next_run(seen: Seen) -> None:
    assert seen.ctx.emulator.state.find_invite("fault-2") is not None


LEFT_FOR_NEXT_RUN = Check(
    "the invite it did not reach is left for the next run", _left_for_the_next_run
)


def _retry_evicts(seen: Seen) -> None:
    assert _copies(seen.ctx) != []  # the copy the fault kept from being evicted
    seen.ctx.relay.restore()
    time.sleep(float(os.environ["TABLE_CIRCUIT_SECONDS"]) + 0.1)  # the breaker half-opens
    again = seen.invoke(_event(seen.row.request))
    if seen.row.request == SWEEP:  # the run that failed, as the scheduler retries it
        summary = json.loads(again["body"])
        assert (summary["already_gone"], summary["revoked"], summary["not_evicted"]) == (1, 1, [])
    else:  # the admin's retry: Discord has nothing left to delete, the copy goes
        assert again["statusCode"] == 404, again
    assert _copies(seen.ctx) == []


RETRY_EVICTS = Check(
    "once the table is back, the retry evicts the copy that was left", _retry_evicts
)


# -- what came before the fault -----------------------------------------------------------


def _cached_then(fail: Callable[[Relay], None]) -> Callable[[Ctx, Invoke], None]:
    """A lookup (another API instance's) caches the invite through the relay; then the
    table fails as ``fail`` says."""

    def before(ctx: Ctx, _: Invoke) -> None:
        [guild] = ctx.emulator.state.guilds.values()
        ctx.emulator.state.add_invite(guild, code="fault-2")
        assert _environment("ApiFunction").invoke(_event("GET"))["statusCode"] == 200
        ctx.cached = _copies(ctx) != []
        assert ctx.cached
        ctx.emulator.state.requests.clear()
        fail(ctx.relay)

    return before


def _with_a_second_invite(ctx: Ctx, _: Invoke) -> None:
    [guild] = ctx.emulator.state.guilds.values()
    ctx.emulator.state.add_invite(guild, code="fault-2")
    ctx.emulator.state.latency = 1.0  # each Discord call takes 1 s of the invocation's time


def _token_secret(ctx: Ctx, value: str, endpoint: str | None = None) -> dict[str, str]:
    name = f"bot-token-{uuid.uuid4().hex[:10]}"
    boto3.client("secretsmanager", endpoint_url=ctx.moto).create_secret(
        Name=name, SecretString=value
    )
    return {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint or ctx.moto,
        "DISCORD_TOKEN_SECRET_ID": name,
        "TOKEN_CACHE_SECONDS": "0",
    }


def _warm_then_cut_secrets_manager(ctx: Ctx, invoke: Invoke) -> None:
    """An earlier miss read the token; then Secrets Manager stopped answering."""
    [guild] = ctx.emulator.state.guilds.values()
    ctx.emulator.state.add_invite(guild, code="warm-1")
    assert invoke(_event("GET", "warm-1"))["statusCode"] == 200
    ctx.relay.cut()


def _revoked_while_fetching(ctx: Ctx, _: Invoke) -> None:
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


# -- the rows -------------------------------------------------------------------------------

SWEEP = "a rule run"
_SWEEP_SETTINGS = {"CACHE_TABLE_NAME": "matrix", "DYNAMODB_TIMEOUT": "0.05"}
NO_RETRIES = {"UPSTREAM_RETRIES": "0"}
UPSTREAM_ERROR = ("WARNING", "upstream error")
TABLE_DOWN = ("WARNING", "table circuit open")
EVICTION_FAILED = ("ERROR", "cache eviction failed")
NOT_MADE = ("WARNING", "upstream call not made")


def _discord(
    fault: str,
    status: int,
    code: str,
    *faults: Fault,
    keep: tuple[Check, ...] = (NOT_CACHED,),
    **env: str,
) -> Row:
    return Row(
        "Discord",
        fault,
        "GET",
        status,
        code,
        (UPSTREAM_ERROR,),
        keep,
        discord=faults,
        env=lambda _: {**NO_RETRIES, **env},
    )


def _table(fault: str, endpoint: Callable[[Ctx], str], **env: str) -> Row:
    return Row(
        "DynamoDB",
        fault,
        "GET",
        200,
        None,
        (TABLE_DOWN,),
        (FROM_DISCORD,),
        env=lambda ctx: {"AWS_ENDPOINT_URL_DYNAMODB": endpoint(ctx), **env},
    )


def _table_down_revoking(fault: str, fail: Callable[[Relay], None], request: str) -> Row:
    """A revocation while the table is down: Discord deletes the invite, the copy stays, and
    the failure is the caller's to see, so that a retry evicts it."""
    env = {"DYNAMODB_TIMEOUT": "0.05", "TABLE_CIRCUIT_SECONDS": "0.5"}
    common = {
        "env": lambda ctx: {"AWS_ENDPOINT_URL_DYNAMODB": ctx.relay.url, **env},
        "before": _cached_then(fail),
    }
    if request == SWEEP:
        return Row(
            "DynamoDB",
            fault,
            SWEEP,
            500,
            "cache_eviction_failed",
            (TABLE_DOWN, EVICTION_FAILED, ("ERROR", "revocation rule run failed")),
            (audited("revoked", evicted=False), LEFT_FOR_NEXT_RUN, RETRY_EVICTS),
            summary=(("revoked", 0), ("failed", 1), ("not_evicted", [CODE])),
            timeout=int(RevokerSettings.from_env(_SWEEP_SETTINGS).step_seconds) + 10,
            **common,  # type: ignore[arg-type]
        )
    return Row(
        "DynamoDB",
        fault,
        "DELETE",
        503,
        "cache_eviction_failed",
        (TABLE_DOWN, EVICTION_FAILED),
        (audited("revoked", evicted=False), RETRY_EVICTS),
        **common,  # type: ignore[arg-type]
    )


def _deadline_mid_delete(fault: str, table_delay: float) -> Row:
    """Discord answers the DELETE too late: the call gives up in time for what follows."""

    def slow_table(relay: Relay) -> None:
        relay.delay = table_delay

    return Row(
        "Lambda",
        fault,
        "DELETE",
        504,
        "upstream_timeout",
        (UPSTREAM_ERROR,),
        (audited("failed", evicted=True), NO_COPY_SURVIVES),
        discord=(Fault(status=200, body="{}", delay=12.0, route="DELETE /invites/{code}"),),
        env=lambda ctx: {"AWS_ENDPOINT_URL_DYNAMODB": ctx.relay.url, "DISCORD_READ_TIMEOUT": "20"},
        before=_cached_then(slow_table),
    )


RATE_LIMITED_PER_ROUTE = Fault(
    status=429, body=RATE_LIMITED % "false", headers={"X-RateLimit-Scope": "user"}
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
        RATE_LIMITED_PER_ROUTE,
        keep=(NOT_CACHED, KEPT_BY_FLEET),
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
        keep=(NOT_CACHED, KEPT_BY_FLEET),
    ),
    _discord(
        "429 without JSON (a ban)",
        503,
        "upstream_blocked",
        Fault(status=429, body=CLOUDFLARE, content_type="text/html"),
        keep=(NOT_CACHED, KEPT_BY_FLEET),
    ),
    _discord(
        "401 on a revoked token",
        502,
        "upstream_unauthorized",
        Fault(status=401, body='{"message": "401: Unauthorized", "code": 0}'),
        keep=(NOT_CACHED, KEPT_BY_FLEET),
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
        (UPSTREAM_ERROR,),
        (STILL_ON_DISCORD, audited("forbidden", evicted=True), NO_COPY_SURVIVES),
        discord=(Fault(status=403, body=MISSING_PERMISSIONS, route="DELETE /invites/{code}"),),
        before=_cached_then(lambda _: None),
    ),
    _table("refusing connections", lambda ctx: ctx.refusing),
    _table("hanging", lambda ctx: ctx.hanging.url, DYNAMODB_TIMEOUT="0.5"),
    _table(
        "ProvisionedThroughputExceededException",
        lambda ctx: ctx.throttling("ProvisionedThroughputExceededException"),
    ),
    _table("ThrottlingException", lambda ctx: ctx.throttling("ThrottlingException")),
    Row(
        "DynamoDB",
        "refusing connections, and Discord answers 429",
        "GET",
        429,
        "rate_limited",
        (TABLE_DOWN, UPSTREAM_ERROR),
        (KEPT_BY_INSTANCE,),
        discord=(RATE_LIMITED_PER_ROUTE,),
        env=lambda ctx: {"AWS_ENDPOINT_URL_DYNAMODB": ctx.refusing, **NO_RETRIES},
    ),
    _table_down_revoking("refusing connections", Relay.cut, "DELETE"),
    _table_down_revoking("hanging", Relay.hang, "DELETE"),
    _table_down_revoking("refusing connections", Relay.cut, SWEEP),
    _table_down_revoking("hanging", Relay.hang, SWEEP),
    Row(
        "Secrets Manager",
        "unavailable at cold start",
        "GET",
        503,
        "credentials_unavailable",
        (NOT_MADE,),
        (NO_CALL,),
        env=lambda ctx: {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": ctx.refusing,
            "DISCORD_TOKEN_SECRET_ID": "discord-invite-proxy/bot-token",
        },
    ),
    Row(
        "Secrets Manager",
        "hanging",
        "GET",
        503,
        "credentials_unavailable",
        (NOT_MADE,),
        (NO_CALL,),
        env=lambda ctx: {
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": ctx.hanging.url,
            "DISCORD_TOKEN_SECRET_ID": "discord-invite-proxy/bot-token",
        },
        timeout=4,  # the read is waited for until the deadline: keep the test short
    ),
    Row(
        "Secrets Manager",
        "unreachable at a later token re-read",
        "GET",
        503,
        "credentials_unavailable",
        (NOT_MADE,),
        (NO_CALL_ONCE_UNREADABLE,),
        env=lambda ctx: _token_secret(ctx, BOT_TOKEN, endpoint=ctx.relay.url),
        before=_warm_then_cut_secrets_manager,
    ),
    Row(
        "Secrets Manager",
        "a secret holding the wrong shape (JSON, not the raw token)",
        "GET",
        503,
        "credentials_unavailable",
        (NOT_MADE,),
        (NO_CALL,),
        env=lambda ctx: _token_secret(ctx, json.dumps({"token": BOT_TOKEN})),
    ),
    Row(
        "DynamoDB",
        "a conditional-write race: revoked while the lookup was fetching",
        "GET",
        200,
        None,
        (),
        (NOT_CACHED_OVER_REVOCATION,),
        before=_revoked_while_fetching,
    ),
    Row(
        "Lambda",
        "the deadline reached mid-lookup (Discord slower than the invocation)",
        "GET",
        504,
        "upstream_timeout",
        (UPSTREAM_ERROR,),
        (NOT_CACHED,),
        discord=(Fault(status=200, body="{}", delay=8.0),),
        env=lambda _: {"DISCORD_READ_TIMEOUT": "20", "LOOKUP_DEADLINE_SECONDS": "28"},
        timeout=4,
    ),
    Row(
        "Lambda",
        "the deadline reached mid-sweep",
        SWEEP,
        200,
        None,
        (),
        (audited("revoked", evicted=True), LEFT_FOR_NEXT_RUN),
        env=lambda _: {"DYNAMODB_TIMEOUT": "0.05"},
        before=_with_a_second_invite,
        summary=(("stopped", "deadline"), ("revoked", 1), ("left", 1)),
        # Beyond the reserve and the time kept to answer and report, time for a lookup, a
        # DELETE (1 s each) and half of the next: the second DELETE would start with less
        # than the reserve left.
        timeout=RevokerSettings.from_env(_SWEEP_SETTINGS).step_seconds
        + ANSWER_RESERVE_SECONDS
        + REPORTING_SECONDS
        + 2.5,
    ),
    _deadline_mid_delete("the deadline reached mid-DELETE", 0.0),
    _deadline_mid_delete("the deadline reached mid-DELETE, over a slow table (60 ms a call)", 0.06),
]


def _answer(row: Row) -> str:
    if row.request != SWEEP:
        return f"{row.status}" + (f" `{row.error_code}`" if row.error_code else "")
    said = ", ".join(f"`{key}: {json.dumps(value)}`" for key, value in row.summary)
    if row.status == 200:
        return f"its summary: {said}"
    return f"the invocation fails (`{row.error_code}`), its summary: {said}"


def render(rows: list[Row]) -> str:
    lines = [
        "# What happens when a dependency fails",
        "",
        "Generated from `tests/e2e/test_fault_matrix.py` (`make faults-doc`); every row is a",
        "passing test. Each row invokes the API handler (or the revoker) as Lambda would,",
        "with one fault, and every answer comes at least half a second before the",
        "invocation's timeout. Logged: each line at warning or above, and nothing else",
        "is. No row logs or answers a secret. Nothing is lost: what the row checks.",
        "",
        "| layer | fault | request | the client gets | logged | nothing is lost |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        request = "a rule run (the revoker)" if row.request == SWEEP else f"`{row.request}`"
        logged = "; ".join(f"{level} `{message}`" for level, message in row.logged) or "nothing"
        lost = "; ".join(check.says for check in row.keep)
        lines.append(
            f"| {row.layer} | {row.fault} | {request} | {_answer(row)} | {logged} | {lost} |"
        )
    return "\n".join(lines) + "\n"


def test_the_fault_table_is_generated_from_the_rows() -> None:
    if os.environ.get("WRITE_FAULTS_DOC"):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(render(ROWS))
    assert DOC.read_text() == render(ROWS), "docs/faults.md is stale: run make faults-doc"


def test_every_row_has_its_own_id() -> None:
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.fixture
def ctx(moto_endpoint: str, table_name: str, emulator: DiscordEmulator) -> Iterator[Ctx]:
    hanging, relay = HangingServer(), Relay(moto_endpoint)
    context = Ctx(moto_endpoint, table_name, emulator, hanging, relay)
    yield context
    hanging.close()
    relay.close()
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


def _environment(function: str) -> ExecutionEnvironment:
    return ExecutionEnvironment(Template().functions()[function])


def _invoke_as_scheduled(invoke: Invoke, event: dict[str, Any], records: Any) -> dict[str, Any]:
    """A rule run's answer: 200 with its summary, or 500 with the summary it logged."""
    try:
        return {"statusCode": 200, "body": json.dumps(invoke(event))}
    except RuleRunFailed:
        [failed] = [r for r in records if r.getMessage() == "revocation rule run failed"]
        return {"statusCode": 500, "body": json.dumps(failed.summary)}


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
    caplog.clear()  # what came before is not this row's to log
    for fault in row.discord:
        ctx.emulator.state.inject(fault)
    context = LambdaContext(function, 512, timeout_seconds=row.timeout)

    if row.request == SWEEP:
        answer = _invoke_as_scheduled(
            partial(environment.invoke, context=context), _event(SWEEP), caplog.records
        )
    else:
        answer = environment.invoke(_event(row.request), context)

    # What the client gets: the status, and the JSON error envelope with its code.
    assert answer["statusCode"] == row.status, answer
    if row.request == SWEEP:
        summary = json.loads(answer["body"])
        assert summary["error_code"] == row.error_code
        assert [(key, summary[key]) for key, _ in row.summary] == list(row.summary)
    elif row.error_code:
        assert json.loads(answer["body"])["error"]["code"] == row.error_code
    if row.status in (429, 503):
        assert int(answer["headers"]["Retry-After"]) >= 1  # and when to come back
    assert context.get_remaining_time_in_millis() >= 500  # answered in time
    # What is logged: each line at warning or above, at the right level.
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    said = [(r.levelname, r.getMessage().split(":")[0]) for r in loud]
    assert said == list(row.logged), said
    # No secret, anywhere: every log line with all its fields, and the answer.
    lines = [json.dumps(r.__dict__, default=str) for r in caplog.records]
    everything = "\n".join(lines) + capsys.readouterr().out + json.dumps(answer)
    for secret in (BOT_TOKEN, ADMIN_TOKEN):
        assert secret not in everything
    # Nothing lost.
    seen = Seen(
        ctx,
        row,
        answer,
        list(caplog.records),
        partial(_invoke_as_scheduled, environment.invoke, records=caplog.records)
        if row.request == SWEEP
        else environment.invoke,
        lambda: _environment(function).invoke,
    )
    for check in row.keep:
        check.verify(seen)
