"""events/*.json (the samples for `sam local invoke`) run through the real handler."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from discord_emulator import DiscordEmulator
from discord_emulator.seeds import seed_samples
from invite_proxy_local.gateway import ExecutionEnvironment, LocalGateway
from invite_proxy_local.template import Route, Template
from tests.conftest import BOT_TOKEN

EVENTS = Path(__file__).resolve().parents[1] / "events"
SAM_SAMPLE = Path(__file__).parent / "data" / "sam_http_api_proxy_event.json"

# event file -> (function, expected status)
EXPECTED = {
    "get_invite.json": ("ApiFunction", 200),
    "get_invite_with_counts.json": ("ApiFunction", 200),
    "get_invite_unknown.json": ("ApiFunction", 404),
    "get_invite_invalid_code.json": ("ApiFunction", 400),
}


def test_every_event_file_has_an_expectation() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == sorted(EXPECTED)


@pytest.fixture
def environments(
    template: Template, moto_endpoint: str, table_name: str, emulator: DiscordEmulator
) -> dict[str, ExecutionEnvironment]:
    seed_samples(emulator.state)
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
        CACHE_TABLE_NAME=table_name,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
    )
    return {fid: ExecutionEnvironment(fn) for fid, fn in template.functions().items()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_event_runs_through_its_handler(
    environments: dict[str, ExecutionEnvironment], name: str
) -> None:
    function, status = EXPECTED[name]
    event = json.loads((EVENTS / name).read_text())
    response = environments[function].invoke(event)
    assert response["statusCode"] == status
    body = json.loads(response["body"])
    if status == 200:
        assert body["code"] == event["pathParameters"]["code"]
        assert ("approximate_member_count" in body) == ("with_counts" in event["rawQueryString"])
    else:
        assert set(body["error"]) == {"code", "message"}


def _keys(event: dict[str, Any]) -> tuple[set[str], set[str], set[str]]:
    context = event["requestContext"]
    return set(event), set(context), set(context["http"])


def test_gateway_events_have_api_gateways_shape() -> None:
    """Compare with `sam local generate-event apigateway http-api-proxy`, saved in tests/data."""
    sam_top, sam_context, sam_http = _keys(json.loads(SAM_SAMPLE.read_text()))
    optional_top = {"cookies", "body", "pathParameters", "queryStringParameters", "stageVariables"}
    optional_context = {"authentication", "authorizer"}
    for path in EVENTS.glob("*.json"):
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
