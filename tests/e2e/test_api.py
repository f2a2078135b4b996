"""GET /invites/{code} end to end: HTTP, local gateway, real handler, moto, Discord emulator."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy_local.gateway import ExecutionEnvironment
from invite_proxy_local.runner import LocalRun

APP = "https://app.example.org"
ROUTE = "GET /invites/{code}"


def upstream_calls(emulator: DiscordEmulator) -> int:
    return len(emulator.state.requests_to(ROUTE))


def raw_get(
    run: LocalRun, path: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """Send the path exactly as written (requests would normalise dots and encodings)."""
    parts = urlsplit(run.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    response.read()
    return response


def error_of(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    return body["error"]  # type: ignore[no-any-return]


# -- cache behaviour -------------------------------------------------------------------


def test_miss_then_hit_serves_discords_body_verbatim(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(
        guild, code="abc-123", max_age=3600, extra={"brand_new_field": {"x": [1, 2.5]}}
    )
    first = requests.get(f"{api.url}/invites/abc-123", timeout=5)
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "MISS"
    assert first.headers["Content-Type"] == "application/json"
    assert first.json()["brand_new_field"] == {"x": [1, 2.5]}  # unknown fields survive
    second = requests.get(f"{api.url}/invites/abc-123", timeout=5)
    assert second.headers["X-Cache"] == "HIT"
    assert second.content == first.content
    assert second.headers["ETag"] == first.headers["ETag"]
    assert upstream_calls(emulator) == 1


def test_body_is_byte_identical_to_discords(api: LocalRun, emulator: DiscordEmulator) -> None:
    body = '{"code":"exact1","expires_at":null,  "z":1.10,"guild":{"id":"1"},"emoji":"✓"}'
    emulator.state.inject(Fault(status=200, body=body, route=ROUTE))
    assert requests.get(f"{api.url}/invites/exact1", timeout=5).content == body.encode()
    assert (
        requests.get(f"{api.url}/invites/exact1", timeout=5).content == body.encode()
    )  # from cache


def test_cache_control_counts_down_remaining_freshness(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api(CACHE_FRESH_SECONDS="30")
    emulator.state.add_invite(guild, code="cc-1")
    assert (
        requests.get(f"{run.url}/invites/cc-1", timeout=5).headers["Cache-Control"]
        == "public, max-age=30"
    )
    time.sleep(1.1)
    hit = requests.get(f"{run.url}/invites/cc-1", timeout=5)
    assert hit.headers["X-Cache"] == "HIT"
    assert hit.headers["Cache-Control"] in ("public, max-age=28", "public, max-age=29")


def test_freshness_expiry_refetches(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    run = start_api(CACHE_FRESH_SECONDS="1")
    emulator.state.add_invite(guild, code="fresh-1")
    assert requests.get(f"{run.url}/invites/fresh-1", timeout=5).headers["X-Cache"] == "MISS"
    assert requests.get(f"{run.url}/invites/fresh-1", timeout=5).headers["X-Cache"] == "HIT"
    time.sleep(1.1)
    assert requests.get(f"{run.url}/invites/fresh-1", timeout=5).headers["X-Cache"] == "MISS"
    assert upstream_calls(emulator) == 2


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=500),
        Fault(
            status=429,
            body='{"message": "slow down", "retry_after": 3.0, "global": false, "code": 0}',
        ),
        Fault(status=403, body="<html>blocked</html>", content_type="text/html"),
        Fault(reset=True),
        Fault(status=200, body="{}", delay=1.0),  # a read timeout
    ],
)
def test_stale_copy_served_when_discord_fails(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild, fault: Fault
) -> None:
    run = start_api(CACHE_FRESH_SECONDS="1", UPSTREAM_RETRIES="0", DISCORD_READ_TIMEOUT="0.5")
    emulator.state.add_invite(guild, code="stale-1")
    first = requests.get(f"{run.url}/invites/stale-1", timeout=5)
    time.sleep(1.1)
    emulator.state.inject(fault)
    stale = requests.get(f"{run.url}/invites/stale-1", timeout=5)
    assert stale.status_code == 200
    assert stale.headers["X-Cache"] == "STALE"
    assert stale.headers["Cache-Control"] == "public, max-age=0, must-revalidate"
    assert stale.content == first.content
    assert upstream_calls(emulator) == 2  # the fault was met, not skipped


def test_variants_are_cached_separately(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="var-1")
    plain = requests.get(f"{api.url}/invites/var-1", timeout=5)
    counted = requests.get(f"{api.url}/invites/var-1?with_counts=true", timeout=5)
    assert "approximate_member_count" not in plain.json()
    assert counted.json()["approximate_member_count"] == 42
    assert counted.headers["X-Cache"] == "MISS"
    event = requests.get(
        f"{api.url}/invites/var-1?with_counts=true&guild_scheduled_event_id=77", timeout=5
    )
    assert event.headers["X-Cache"] == "MISS"
    again = requests.get(f"{api.url}/invites/var-1?with_counts=1", timeout=5)
    assert again.headers["X-Cache"] == "HIT"
    assert again.content == counted.content
    assert upstream_calls(emulator) == 3
    assert [r.query for r in emulator.state.requests_to(ROUTE)] == [
        "",
        "with_counts=true",
        "with_counts=true&guild_scheduled_event_id=77",
    ]


def test_with_expiration_is_ignored(api: LocalRun, emulator: DiscordEmulator, guild: Guild) -> None:
    emulator.state.add_invite(guild, code="exp-1")
    requests.get(f"{api.url}/invites/exp-1", timeout=5)
    again = requests.get(f"{api.url}/invites/exp-1?with_expiration=true", timeout=5)
    assert again.headers["X-Cache"] == "HIT"
    assert [r.query for r in emulator.state.requests_to(ROUTE)] == [""]


def test_expired_invite_is_not_served_from_cache(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="short-1", max_age=2)
    assert requests.get(f"{api.url}/invites/short-1", timeout=5).status_code == 200
    time.sleep(2.1)
    # The cached copy's TTL was the invite's expires_at; moto still holds the item.
    gone = requests.get(f"{api.url}/invites/short-1", timeout=5)
    assert gone.status_code == 404
    assert gone.headers["X-Cache"] == "MISS"


# -- negative caching ----------------------------------------------------------------


def test_unknown_invite_is_404_and_cached_negatively(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    run = start_api(NEGATIVE_CACHE_SECONDS="1")
    first = requests.get(f"{run.url}/invites/dead-code", timeout=5)
    assert first.status_code == 404
    assert error_of(first) == {"code": "unknown_invite", "message": "Unknown invite."}
    assert first.headers["X-Cache"] == "MISS"
    second = requests.get(f"{run.url}/invites/dead-code", timeout=5)
    assert second.status_code == 404
    assert second.headers["X-Cache"] == "HIT"
    assert upstream_calls(emulator) == 1
    time.sleep(1.1)
    assert requests.get(f"{run.url}/invites/dead-code", timeout=5).headers["X-Cache"] == "MISS"
    assert upstream_calls(emulator) == 2


def test_negative_cache_can_be_disabled(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator
) -> None:
    run = start_api(NEGATIVE_CACHE_SECONDS="0")
    for _ in range(2):
        assert requests.get(f"{run.url}/invites/dead-code", timeout=5).headers["X-Cache"] == "MISS"
    assert upstream_calls(emulator) == 2


# -- ETag -------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_gives_304(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild, form: str
) -> None:
    emulator.state.add_invite(guild, code="etag-1")
    etag = requests.get(f"{api.url}/invites/etag-1", timeout=5).headers["ETag"]
    not_modified = requests.get(
        f"{api.url}/invites/etag-1", headers={"If-None-Match": form.format(etag=etag)}, timeout=5
    )
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert not_modified.headers["X-Cache"] == "HIT"


def test_stale_etag_gets_the_full_body(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="etag-2")
    response = requests.get(
        f"{api.url}/invites/etag-2", headers={"If-None-Match": '"nope"'}, timeout=5
    )
    assert response.status_code == 200
    assert response.json()["code"] == "etag-2"


# -- validation and path tricks ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/invites/a",
        "/invites/" + "a" * 33,
        "/invites/abc%2F..%2Fguilds%2F1",
        "/invites/..%2F..%2Fusers%2F%40me",
        "/invites/%2e%2e",
        "/invites/abc%00",
        "/invites/abc.def",
        "/invites/abc_def",
        "/invites/%C3%BCber",
        "/invites/abc?with_counts=maybe",
        "/invites/abc?guild_scheduled_event_id=12ab",
        "/invites/abc?with_counts=true&with_counts=false",
    ],
)
def test_bad_input_is_400_and_reaches_neither_discord_nor_cache(
    api: LocalRun, emulator: DiscordEmulator, dynamodb: Any, path: str
) -> None:
    response = raw_get(api, path)
    assert response.status == 400
    assert response.getheader("Cache-Control") == "no-store"
    assert upstream_calls(emulator) == 0
    assert dynamodb.scan(TableName=api.table_name)["Count"] == 0


def test_error_message_names_the_field(api: LocalRun) -> None:
    response = requests.get(f"{api.url}/invites/abc?with_counts=maybe", timeout=5)
    assert error_of(response) == {
        "code": "invalid_request",
        "message": "Invalid with_counts: must be true or false.",
    }


def test_extra_path_segments_are_not_a_route(api: LocalRun, emulator: DiscordEmulator) -> None:
    assert raw_get(api, "/invites/abc/def").status == 404
    assert raw_get(api, "/invites/abc/../../guilds/1").status == 404
    assert upstream_calls(emulator) == 0


# -- Discord's errors ----------------------------------------------------------------------

CLOUDFLARE = "<html><head><title>Access denied | discord.com used Cloudflare</title></head></html>"


@pytest.mark.parametrize(
    ("fault", "status", "code", "retry_after"),
    [
        (
            Fault(
                status=429,
                body=json.dumps(
                    {"message": "rate limited", "retry_after": 2.5, "global": False, "code": 0}
                ),
                headers={"Retry-After": "3", "X-RateLimit-Scope": "user"},
            ),
            429,
            "rate_limited",
            "3",
        ),
        (
            Fault(status=429, body=CLOUDFLARE, content_type="text/html"),
            503,
            "upstream_blocked",
            "60",
        ),
        (
            Fault(status=403, body=CLOUDFLARE, content_type="text/html"),
            503,
            "upstream_blocked",
            "60",
        ),
        (
            Fault(status=403, body='{"message": "internal network error", "code": 40333}'),
            503,
            "upstream_blocked",
            "60",
        ),
        (
            Fault(status=503, body='{"message": "API resource overloaded", "code": 130000}'),
            503,
            "upstream_unavailable",
            "2",
        ),
        (Fault(reset=True), 503, "upstream_unavailable", "2"),
        (Fault(status=500), 502, "upstream_error", "1"),
        (
            Fault(status=401, body='{"message": "401: Unauthorized", "code": 0}'),
            502,
            "upstream_unauthorized",
            None,
        ),
        (
            Fault(status=403, body='{"message": "Missing Access", "code": 50001}'),
            502,
            "upstream_missing_permissions",
            None,
        ),
        (
            Fault(status=400, body='{"message": "Invalid Form Body", "code": 50035}'),
            502,
            "upstream_error",
            None,
        ),
        (Fault(status=200, body="<html>", content_type="text/html"), 502, "upstream_error", None),
        (Fault(status=200, body='{"not": "an invite"}'), 502, "upstream_error", None),
        (Fault(status=200, body="{}", delay=1.5), 504, "upstream_timeout", "2"),
    ],
)
def test_discord_errors_map_to_json_errors(
    start_api: Callable[..., LocalRun],
    emulator: DiscordEmulator,
    fault: Fault,
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    # One attempt: this is about the mapping; retries have tests of their own.
    run = start_api(DISCORD_READ_TIMEOUT="0.5", UPSTREAM_RETRIES="0")
    emulator.state.inject(fault)
    response = requests.get(f"{run.url}/invites/err-code", headers={"Origin": APP}, timeout=10)
    assert response.status_code == status
    assert error_of(response)["code"] == code
    assert response.headers.get("Retry-After") == retry_after
    assert response.headers["Access-Control-Allow-Origin"] == APP
    text = response.text
    for secret in ("test-bot-token", "Traceback", "Cloudflare", "50001", "internal network"):
        assert secret not in text


def test_unexpected_crash_is_a_json_500_without_internals(
    api: LocalRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = api.gateway.environments["ApiFunction"]
    assert isinstance(environment, ExecutionEnvironment)  # in this process: patched below
    module = environment.module

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals /var/task")

    monkeypatch.setattr(module.services.lookups, "lookup", boom)
    response = requests.get(f"{api.url}/invites/crash-1", timeout=5)
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal_error", "message": "Internal error."}
    assert "internals" not in response.text


# -- CORS -----------------------------------------------------------------------------------


def test_cors_allowed_origin_gets_headers_and_exposed_cache_headers(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="cors-1")
    response = requests.get(f"{api.url}/invites/cors-1", headers={"Origin": APP}, timeout=5)
    assert response.headers["Access-Control-Allow-Origin"] == APP
    exposed = response.headers["Access-Control-Expose-Headers"].split(",")
    assert {"etag", "x-cache", "retry-after"} <= set(exposed)
    assert "Origin" in response.headers["Vary"]


def test_cors_denied_origin_gets_no_cors_headers(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild
) -> None:
    emulator.state.add_invite(guild, code="cors-2")
    response = requests.get(
        f"{api.url}/invites/cors-2", headers={"Origin": "https://evil.example"}, timeout=5
    )
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


def test_no_origin_no_cors_headers(api: LocalRun) -> None:
    response = requests.get(f"{api.url}/invites/abc", timeout=5)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_allowed(api: LocalRun, emulator: DiscordEmulator) -> None:
    response = requests.options(
        f"{api.url}/invites/abc",
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "if-none-match",
        },
        timeout=5,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert "GET" in response.headers["Access-Control-Allow-Methods"].split(",")
    assert "if-none-match" in response.headers["Access-Control-Allow-Headers"].split(",")
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert emulator.state.requests == []  # answered by the gateway, no Lambda, no Discord


def test_preflight_denied_origin(api: LocalRun) -> None:
    response = requests.options(
        f"{api.url}/invites/abc",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        timeout=5,
    )
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", ["/invites/a", "/invites/dead-code", "/nope"])
def test_error_responses_carry_cors_headers(api: LocalRun, path: str) -> None:
    response = requests.get(f"{api.url}{path}", headers={"Origin": APP}, timeout=5)
    assert response.status_code in (400, 404)
    assert response.headers["Access-Control-Allow-Origin"] == APP


# -- DynamoDB down ----------------------------------------------------------------------------


def test_dynamodb_down_still_serves_through_discord(
    start_api: Callable[..., LocalRun],
    emulator: DiscordEmulator,
    guild: Guild,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from invite_proxy_local.dynamodb import start_moto_server

    server, endpoint = start_moto_server()
    run = start_api(AWS_ENDPOINT_URL_DYNAMODB=endpoint, DYNAMODB_TIMEOUT="0.3")
    server.stop()
    emulator.state.add_invite(guild, code="nodb-1")
    for _ in range(2):
        response = requests.get(f"{run.url}/invites/nodb-1", timeout=10)
        assert response.status_code == 200
        assert response.headers["X-Cache"] == "MISS"
        assert response.json()["code"] == "nodb-1"
    assert upstream_calls(emulator) == 2
    # One line says the table failed: the circuit's opening. The calls it skips are not said.
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert [r.getMessage().split(":")[0] for r in warnings] == ["table circuit open"]
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert sum(m.get("CacheError", [0])[0] for m in metrics) >= 2


# -- oversized requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/invites/proxy-demo", {"X-Big": "x" * 12_000}, 431),  # over API Gateway's 10 kB
        ("/invites/proxy-demo?with_counts=" + "1" * 12_000, {}, 431),
        ("/invites/proxy-demo", {"X-Huge": "x" * 100_000}, 431),  # over http.server's own line
    ],
)
def test_oversized_requests_are_refused_with_json_as_api_gateway_does(
    api: LocalRun, emulator: DiscordEmulator, path: str, headers: dict[str, str], status: int
) -> None:
    response = requests.get(f"{api.url}{path}", headers=headers, timeout=10)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert "message" in response.json()
    assert upstream_calls(emulator) == 0


def test_an_oversized_but_admissible_reason_is_the_projects_json_400(api: LocalRun) -> None:
    reason = "x" * 2000  # under API Gateway's quota, over Discord's 512 characters
    response = requests.delete(
        f"{api.url}/invites/proxy-demo",
        headers={"Authorization": f"Bearer {api.admin_token}", "X-Audit-Log-Reason": reason},
        timeout=10,
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_request"


def test_an_oversized_body_is_refused_before_any_function_runs(api: LocalRun) -> None:
    response = requests.delete(
        f"{api.url}/invites/proxy-demo",
        headers={"Authorization": f"Bearer {api.admin_token}", "Content-Length": "20000000"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.json() == {"message": "Request Entity Too Large"}


# -- CORS never reflects an origin that is not on the allow-list -----------------------------

LOOKALIKES = [
    "https://evil.example.com",
    "https://app.example.org.evil.com",
    "https://evil-app.example.org",
    "http://app.example.org",  # the right host, the wrong scheme
    "https://app.example.org:8443",
    "null",
]


@pytest.mark.parametrize("origin", LOOKALIKES)
@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/invites/proxy-demo", {}),
        ("GET", "/invites/a", {}),  # a 400
        ("GET", "/nope", {}),  # a 404
        ("DELETE", "/invites/proxy-demo", {}),  # API Gateway's own 401
        ("DELETE", "/invites/proxy-demo", {"Authorization": "Bearer wrong"}),  # its 403
        ("OPTIONS", "/invites/proxy-demo", {"Access-Control-Request-Method": "DELETE"}),
    ],
)
def test_no_answer_reflects_an_origin_off_the_allow_list(
    api: LocalRun, origin: str, method: str, path: str, headers: dict[str, str]
) -> None:
    response = requests.request(
        method, f"{api.url}{path}", headers={"Origin": origin, **headers}, timeout=5
    )
    reflected = {k.lower(): v for k, v in response.headers.items()}
    assert "access-control-allow-origin" not in reflected, (response.status_code, reflected)
    assert "access-control-allow-credentials" not in reflected
