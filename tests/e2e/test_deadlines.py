"""No request outlives its invocation: the handler, invoked as Lambda would, answers in time.

Each test hangs one dependency (an endpoint that accepts connections and never
answers) and checks the invocation returns the best answer available before
Lambda's timeout less the half second kept to answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template
from tests.conftest import BOT_TOKEN
from tests.stand_ins import HangingServer

EVENTS = Path(__file__).resolve().parents[2] / "events"
TIMEOUT = 6  # seconds: the invocation's, as Lambda would give it


@pytest.fixture
def hanging() -> Iterator[HangingServer]:
    server = HangingServer()
    yield server
    server.close()


def lookup_event(code: str) -> dict[str, object]:
    event = json.loads((EVENTS / "get_invite.json").read_text())
    event["rawPath"] = f"/invites/{code}"
    event["pathParameters"] = {"code": code}
    return event  # type: ignore[no-any-return]


def invoke(
    template: Template, function: str, event: dict[str, object], timeout: int = TIMEOUT
) -> tuple[object, float]:
    """A handler, loaded and invoked as Lambda would: (its answer or error, seconds it took)."""
    environment = ExecutionEnvironment(template.functions()[function])
    context = LambdaContext(function, 512, timeout_seconds=timeout)
    try:
        answer: object = environment.invoke(event, context)
    except Exception as exc:
        answer = exc
    return answer, timeout - context.get_remaining_time_in_millis() / 1000


def invoke_api(template: Template, event: dict[str, object]) -> tuple[dict[str, Any], float]:
    answer, took = invoke(template, "ApiFunction", event)
    assert isinstance(answer, dict), answer
    return answer, took


def test_under_a_hanging_dynamodb_a_lookup_answers_from_discord_in_time(
    template: Template, hanging: HangingServer, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="hung-1")
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=hanging.url,
        CACHE_TABLE_NAME="hanging-table",
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        DYNAMODB_TIMEOUT="0.5",  # each table call: 2 attempts of 0.5 + 0.5 s, and a backoff
        TABLE_CIRCUIT_SECONDS="0",  # no breaker: every table call is tried, the deadline alone
    )
    answer, took = invoke_api(template, lookup_event("hung-1"))
    assert answer["statusCode"] == 200
    assert json.loads(str(answer["body"]))["code"] == "hung-1"
    assert took <= TIMEOUT - 0.5


def test_under_a_hanging_discord_a_lookup_answers_a_clear_error_in_time(
    template: Template,
    emulator: DiscordEmulator,
    guild: Guild,
    moto_endpoint: str,
    table_name: str,
) -> None:
    emulator.state.add_invite(guild, code="slow-1")
    emulator.state.inject(Fault(status=200, body="{}", delay=30.0, times=10))
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
        CACHE_TABLE_NAME=table_name,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        DISCORD_READ_TIMEOUT="20",  # longer than the invocation: the deadline must cut it
        LOOKUP_DEADLINE_SECONDS="28",
    )
    answer, took = invoke_api(template, lookup_event("slow-1"))
    assert answer["statusCode"] == 504
    assert json.loads(str(answer["body"]))["error"]["code"] == "upstream_timeout"
    assert took <= TIMEOUT - 0.5


def test_under_a_hanging_secrets_manager_a_miss_answers_503_in_time(
    template: Template,
    hanging: HangingServer,
    emulator: DiscordEmulator,
    guild: Guild,
    moto_endpoint: str,
    table_name: str,
) -> None:
    emulator.state.add_invite(guild, code="nosecret-1")
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER=hanging.url,
        CACHE_TABLE_NAME=table_name,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_TOKEN_SECRET_ID="discord-invite-proxy/bot-token",
    )
    answer, took = invoke_api(template, lookup_event("nosecret-1"))
    assert answer["statusCode"] == 503
    assert json.loads(str(answer["body"]))["error"]["code"] == "credentials_unavailable"
    assert took <= TIMEOUT - 0.5
    assert emulator.state.requests == []  # no token, no call


def test_under_a_hanging_secrets_manager_the_authorizer_fails_closed_in_time(
    template: Template, hanging: HangingServer
) -> None:
    os.environ.update(
        AWS_ENDPOINT_URL_SECRETS_MANAGER=hanging.url,
        ADMIN_TOKENS_SECRET_ID="discord-invite-proxy/admin-tokens",
    )
    event = json.loads((EVENTS / "authorize_admin.json").read_text())
    answer, took = invoke(template, "AdminAuthorizerFunction", event, timeout=5)
    # It fails closed: API Gateway answers 500, and nothing gets through.
    assert type(answer).__name__ == "CredentialsUnavailable"
    assert "admin-tokens" in str(answer)
    assert took <= 5 - 0.5


def test_under_a_hanging_dynamodb_a_rule_run_loses_nothing_and_fails_in_time(
    template: Template,
    hanging: HangingServer,
    emulator: DiscordEmulator,
    guild: Guild,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for code in ("sweep-a", "sweep-b"):
        emulator.state.add_invite(guild, code=code)
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=hanging.url,
        CACHE_TABLE_NAME="hanging-table",
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        DYNAMODB_TIMEOUT="0.05",
        DISCORD_CONNECT_TIMEOUT="0.2",
        DISCORD_READ_TIMEOUT="0.5",
    )
    rule: dict[str, object] = {"name": "hung-sweep", "codes": ["sweep-a", "sweep-b"]}
    answer, took = invoke(template, "RevokerFunction", rule, timeout=45)
    # Discord deleted the first invite, whose cached copies could not be evicted: the run
    # stops there and fails, so the scheduler's retry or the dead-letter queue sees it.
    assert type(answer).__name__ == "RuleRunFailed"
    assert "cache_eviction_failed" in str(answer)
    [report] = [r for r in caplog.records if r.getMessage() == "revocation rule run failed"]
    summary = report.summary  # type: ignore[attr-defined]
    assert (summary["revoked"], summary["failed"], summary["not_evicted"]) == (0, 1, ["sweep-a"])
    assert emulator.state.find_invite("sweep-b") is not None  # left for the retry
    assert took <= 45 - 0.5


@pytest.mark.parametrize("hangs", ["the post", "the URL's secret read"])
def test_a_webhook_that_never_answers_cannot_hold_a_rule_run_past_its_timeout(
    hangs: str,
    template: Template,
    hanging: HangingServer,
    moto_endpoint: str,
    table_name: str,
    emulator: DiscordEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
        CACHE_TABLE_NAME=table_name,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
        WEBHOOK_TIMEOUT="10",  # longer than the invocation: the deadline must cut it
    )
    if hangs == "the post":
        os.environ["REVOCATION_WEBHOOK_URL"] = f"{hanging.url}/webhooks/1/hook-secret"
    else:
        os.environ.update(
            AWS_ENDPOINT_URL_SECRETS_MANAGER=hanging.url,
            REVOCATION_WEBHOOK_SECRET_ID="discord-invite-proxy/webhook",
        )
    answer, took = invoke(template, "RevokerFunction", {"name": "hooked", "codes": ["x-1"]})
    # Too little time for a step: the run fails (the scheduler retries it), and the
    # summary still goes, the post cut short by the deadline.
    assert type(answer).__name__ == "RuleRunFailed", answer
    assert "had no time for a step" in str(answer)
    [warning] = [r for r in caplog.records if r.getMessage() == "webhook notification failed"]
    assert "hook-secret" not in str(warning.__dict__)
    assert took <= TIMEOUT - 0.5
