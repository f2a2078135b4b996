"""events/*.json (the samples for `sam local invoke`) run through the real handler."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from discord_emulator import DiscordEmulator
from discord_emulator.seeds import seed_samples
from invite_proxy.domain.admin_tokens import entry_for
from invite_proxy_local.gateway import ExecutionEnvironment, LocalGateway
from invite_proxy_local.template import Route, Template
from tests.conftest import use_local_servers

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAM_SAMPLE = Path(__file__).parents[1] / "data" / "sam_http_api_proxy_event.json"

# API event file -> expected status
API_EVENTS = {
    "get_invite.json": 200,
    "get_invite_with_counts.json": 200,
    "get_invite_unknown.json": 404,
    "get_invite_invalid_code.json": 400,
    "delete_invite.json": 200,
}
OTHER_EVENTS = {"authorize_admin.json", "revoke_rule_sweep.json", "revoke_rule_codes.json"}
EXAMPLE_TOKEN = "dip_example-token-replace-me"


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted({*API_EVENTS, *OTHER_EVENTS})


@pytest.fixture
def environments(
    template: Template, moto_endpoint: str, table_name: str, emulator: DiscordEmulator
) -> dict[str, ExecutionEnvironment]:
    seed_samples(emulator.state)
    use_local_servers(moto_endpoint, table_name, emulator)
    os.environ["ADMIN_TOKENS"] = json.dumps({"tokens": [entry_for("dashboard", EXAMPLE_TOKEN)]})
    return {fid: ExecutionEnvironment(fn) for fid, fn in template.functions().items()}


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(API_EVENTS))
def test_api_event_runs_through_its_handler(
    environments: dict[str, ExecutionEnvironment], name: str
) -> None:
    status = API_EVENTS[name]
    event = load(name)
    response = environments["ApiFunction"].invoke(event)
    assert response["statusCode"] == status
    body = json.loads(response["body"])
    if status == 200:
        assert body["code"] == event["pathParameters"]["code"]
        assert ("approximate_member_count" in body) == ("with_counts" in event["rawQueryString"])
    else:
        assert set(body["error"]) == {"code", "message"}


def test_delete_event_reaches_discord_with_its_reason(
    environments: dict[str, ExecutionEnvironment], emulator: DiscordEmulator
) -> None:
    environments["ApiFunction"].invoke(load("delete_invite.json"))
    [entry] = emulator.state.audit_log
    assert (entry.code, entry.reason) == ("hourly01", "Event over: invite no longer needed")


def test_authorizer_event_accepts_its_token_and_nothing_else(
    environments: dict[str, ExecutionEnvironment],
) -> None:
    event = load("authorize_admin.json")
    authorizer = environments["AdminAuthorizerFunction"]
    assert authorizer.invoke(event) == {"isAuthorized": True, "context": {"admin": "dashboard"}}
    event["headers"]["authorization"] = "Bearer not-the-token"
    assert authorizer.invoke(event) == {"isAuthorized": False}


def test_authorizer_event_matches_what_the_local_gateway_builds() -> None:
    event = load("authorize_admin.json")
    api_event = load("delete_invite.json")
    del api_event["requestContext"]["authorizer"]
    built = LocalGateway.authorizer_event(api_event, event["identitySource"])
    assert built == event


@pytest.mark.parametrize("name", ["revoke_rule_sweep.json", "revoke_rule_codes.json"])
def test_schedule_inputs_run_as_dry_runs(
    environments: dict[str, ExecutionEnvironment], emulator: DiscordEmulator, name: str
) -> None:
    summary = environments["RevokerFunction"].invoke(load(name))
    assert summary["dry_run"] is True
    assert (
        summary["would_revoke"]
        == {
            "revoke_rule_sweep.json": ["hourly01", "shortlived"],
            "revoke_rule_codes.json": ["shortlived"],
        }[name]
    )
    assert emulator.state.requests_to("DELETE /invites/{code}") == []


def _keys(event: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    context = event["requestContext"]
    return set(event), set(context), set(context["http"])


def test_gateway_events_have_api_gateways_shape() -> None:
    """Compare with `sam local generate-event apigateway http-api-proxy`, saved in tests/data."""
    sam_top, sam_context, sam_http = _keys(json.loads(SAM_SAMPLE.read_text()))
    optional_top = {"cookies", "body", "pathParameters", "queryStringParameters", "stageVariables"}
    optional_context = {"authentication", "authorizer"}
    for name in API_EVENTS:
        path = EVENTS / name
        top, context, http = _keys(json.loads(path.read_text()))
        assert sam_top - optional_top <= top <= sam_top, path.name
        assert sam_context - optional_context <= context <= sam_context, path.name
        assert http == sam_http, path.name


def test_gateway_joins_repeated_query_parameters_and_headers_like_api_gateway() -> None:
    route = Route("GET", "/invites/{code}", "ApiFunction")
    event = LocalGateway.event(
        route, "GET", "/invites/abc", "a=1&a=2&b=", {"x-h": "1,2"}, b"", {"code": "abc"}
    )
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"] == {"x-h": "1,2"}
    assert event["pathParameters"] == {"code": "abc"}
