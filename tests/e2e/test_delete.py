"""DELETE /invites/{code} end to end: the authorizer, Discord, the audit reason, the cache."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy.domain.admin_tokens import entry_for
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.edges.settings import ApiSettings
from invite_proxy_local.runner import LocalRun
from tests.conftest import use_local_servers

APP = "https://app.example.org"
DELETE_ROUTE = "DELETE /invites/{code}"


def deletes(emulator: DiscordEmulator) -> int:
    return len(emulator.state.requests_to(DELETE_ROUTE))


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def delete(run: LocalRun, code: str, **headers: str) -> requests.Response:
    return requests.delete(f"{run.url}/invites/{code}", headers=headers, timeout=10)


def cached_variants(dynamodb: Any, table_name: str, code: str) -> list[str]:
    return [sk for sk in cached_items(dynamodb, table_name, code) if sk.startswith("variant#")]


def cached_items(dynamodb: Any, table_name: str, code: str) -> list[str]:
    """Every item kept for a code (variants and fetch leases), but the revoked marker and
    what was learned of event ids (true after a revocation too)."""
    items = dynamodb.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"invite#{code}"}},
    )["Items"]
    kept = [item["sk"]["S"] for item in items]
    return sorted(sk for sk in kept if sk != "revoked" and not sk.startswith("event#"))


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.audit for r in caplog.records if r.getMessage() == "invite revocation"]  # type: ignore[attr-defined]


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Unauthorized"),
        ({"Authorization": ""}, 401, "Unauthorized"),
        ({"Authorization": "Bearer wrong-token"}, 403, "Forbidden"),
        ({"Authorization": "Basic d3Jvbmc6d3Jvbmc="}, 403, "Forbidden"),
        ({"Authorization": "Bearer"}, 403, "Forbidden"),
        ({"Authorization": "Bearer {almost}"}, 403, "Forbidden"),  # its last character differs
        ({"Authorization": "Token {token}"}, 403, "Forbidden"),  # the right token, wrong scheme
        ({"Authorization": "Bearer {token} {token}"}, 403, "Forbidden"),
        ({"Authorization": "Bearer " + "x" * 4000}, 403, "Forbidden"),
    ],
)
def test_no_or_wrong_credentials_never_reach_discord(
    api: LocalRun,
    emulator: DiscordEmulator,
    guild: Guild,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    emulator.state.add_invite(guild, code="guarded1")
    token = api.admin_token or ""
    almost = token[:-1] + ("A" if token[-1] != "A" else "B")
    headers = {k: v.format(token=token, almost=almost) for k, v in headers.items()}
    response = delete(api, "guarded1", Origin=APP, **headers)
    assert response.status_code == status
    assert response.json() == {"message": message}
    # API Gateway's own rejections carry CORS headers, so a browser can read them.
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert deletes(emulator) == 0
    assert emulator.state.find_invite("guarded1") is not None


def test_the_admin_token_deletes_and_returns_discords_invite(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.state.add_invite(guild, code="bye-bye", max_age=3600, extra={"new_field": [1]})
    caplog.set_level(logging.INFO)
    response = delete(api, "bye-bye", **bearer(api.admin_token))
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "bye-bye"
    assert body["guild"]["id"] == guild.id
    assert body["new_field"] == [1]  # Discord's object, untouched
    assert response.headers["Cache-Control"] == "no-store"
    assert emulator.state.find_invite("bye-bye") is None
    [entry] = emulator.state.audit_log
    assert entry.reason is None  # no header, no reason
    assert audit_lines(caplog) == [
        {
            "actor": "local-admin",
            "source": "api",
            "code": "bye-bye",
            "guild_id": guild.id,
            "reason": None,
            "outcome": "revoked",
            "error_code": None,
            "cache_evicted": True,
        }
    ]


def test_get_stays_public(api: LocalRun, emulator: DiscordEmulator, guild: Guild) -> None:
    emulator.state.add_invite(guild, code="public1")
    assert requests.get(f"{api.url}/invites/public1", timeout=5).status_code == 200


def test_preflight_allows_the_admin_headers(api: LocalRun, emulator: DiscordEmulator) -> None:
    response = requests.options(
        f"{api.url}/invites/abc",
        headers={
            "Origin": "https://admin.example.org",
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "authorization,x-audit-log-reason",
        },
        timeout=5,
    )
    assert response.status_code == 204
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"].split(",")
    allowed = response.headers["Access-Control-Allow-Headers"].split(",")
    assert {"authorization", "x-audit-log-reason"} <= set(allowed)
    assert emulator.state.requests == []


def test_tokens_rotate_through_secrets_manager(
    start_api: Callable[..., LocalRun],
    moto_endpoint: str,
    emulator: DiscordEmulator,
    guild: Guild,
) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint)
    name = f"admin-tokens-{guild.id}"

    def publish(**tokens: str) -> None:
        value = json.dumps({"tokens": [entry_for(n, t) for n, t in tokens.items()]})
        secrets.put_secret_value(SecretId=name, SecretString=value)

    secrets.create_secret(Name=name, SecretString="{}")
    publish(old="token-old")
    run = start_api(
        ADMIN_TOKENS_SECRET_ID=name,
        ADMIN_TOKENS_CACHE_SECONDS="0",
        AWS_ENDPOINT_URL_SECRETS_MANAGER=moto_endpoint,
    )
    assert run.admin_token is None  # the run made none up: the secret decides
    for code in ("rot-1", "rot-2", "rot-3", "rot-4"):
        emulator.state.add_invite(guild, code=code)

    assert delete(run, "rot-1", **bearer("token-old")).status_code == 200
    publish(old="token-old", new="token-new")  # both live while clients move over
    assert delete(run, "rot-2", **bearer("token-old")).status_code == 200
    assert delete(run, "rot-3", **bearer("token-new")).status_code == 200
    publish(new="token-new")
    assert delete(run, "rot-4", **bearer("token-old")).status_code == 403
    assert delete(run, "rot-4", **bearer("token-new")).status_code == 200
    assert deletes(emulator) == 4


def test_unreadable_token_secret_fails_closed(
    start_api: Callable[..., LocalRun], moto_endpoint: str, emulator: DiscordEmulator
) -> None:
    run = start_api(
        ADMIN_TOKENS_SECRET_ID="no-such-secret",
        AWS_ENDPOINT_URL_SECRETS_MANAGER=moto_endpoint,
    )
    response = delete(run, "anything", **bearer("whatever"))
    assert response.status_code == 500  # API Gateway's answer when an authorizer fails
    assert response.json() == {"message": "Internal Server Error"}
    assert deletes(emulator) == 0


# -- the audit reason ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason", "on_the_wire"),
    [
        ("Spam cleanup", "Spam cleanup", "Spam%20cleanup"),
        ("Sp%C3%A4m%20%E2%9C%93", "Späm ✓", "Sp%C3%A4m%20%E2%9C%93"),
        ("50%25 off/?&=#", "50% off/?&=#", "50%25%20off%2F%3F%26%3D%23"),
        ("r" * 512, "r" * 512, "r" * 512),
    ],
)
def test_the_audit_reason_reaches_discord_url_encoded(
    api: LocalRun,
    emulator: DiscordEmulator,
    guild: Guild,
    caplog: pytest.LogCaptureFixture,
    header: str,
    reason: str,
    on_the_wire: str,
) -> None:
    emulator.state.add_invite(guild, code="why-1")
    caplog.set_level(logging.INFO)
    response = delete(api, "why-1", **bearer(api.admin_token), **{"X-Audit-Log-Reason": header})
    assert response.status_code == 200
    [entry] = emulator.state.audit_log
    assert entry.raw_reason == on_the_wire
    assert entry.reason == reason
    assert audit_lines(caplog)[0]["reason"] == reason


@pytest.mark.parametrize(
    ("header", "complaint"),
    [
        ("r" * 513, "at most 512 characters"),
        ("", "at least 1 character"),
        ("%FF", "do not decode as UTF-8"),
        ("50% off", "two hex digits"),
        ("two%0Alines", "control characters"),
    ],
)
def test_a_bad_audit_reason_is_a_400_that_never_reaches_discord(
    api: LocalRun,
    emulator: DiscordEmulator,
    guild: Guild,
    caplog: pytest.LogCaptureFixture,
    header: str,
    complaint: str,
) -> None:
    emulator.state.add_invite(guild, code="why-2")
    caplog.set_level(logging.INFO)
    response = delete(api, "why-2", **bearer(api.admin_token), **{"X-Audit-Log-Reason": header})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert "X-Audit-Log-Reason" in error["message"]
    assert complaint in error["message"]
    assert deletes(emulator) == 0
    [line] = audit_lines(caplog)
    assert line["outcome"] == "invalid_request"
    assert line["actor"] == "local-admin"


def test_a_bad_code_is_a_400(api: LocalRun, emulator: DiscordEmulator) -> None:
    response = delete(api, "a.b", **bearer(api.admin_token))
    assert response.status_code == 400
    assert deletes(emulator) == 0


# -- outcomes and the cache ----------------------------------------------------------------


def test_every_cached_variant_is_gone_after_a_delete(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild, dynamodb: Any, table_name: str
) -> None:
    emulator.state.add_invite(guild, code="cached-1", max_age=3600)
    for query in ("", "?with_counts=true", "?guild_scheduled_event_id=123"):
        assert requests.get(f"{api.url}/invites/cached-1{query}", timeout=5).status_code == 200
    assert len(cached_variants(dynamodb, table_name, "cached-1")) == 3
    assert delete(api, "cached-1", **bearer(api.admin_token)).status_code == 200
    assert cached_items(dynamodb, table_name, "cached-1") == []  # the leases went too
    after = requests.get(f"{api.url}/invites/cached-1", timeout=5)
    assert after.status_code == 404  # never the revoked invite from cache
    assert after.headers["X-Cache"] == "MISS"


def test_unknown_invite_is_404_and_still_evicts(
    api: LocalRun,
    emulator: DiscordEmulator,
    guild: Guild,
    dynamodb: Any,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.state.add_invite(guild, code="gone-1")
    assert requests.get(f"{api.url}/invites/gone-1", timeout=5).status_code == 200
    emulator.state.invites.pop("gone-1")  # revoked behind the proxy's back
    caplog.set_level(logging.INFO)
    response = delete(api, "gone-1", **bearer(api.admin_token))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_invite"
    assert cached_variants(dynamodb, table_name, "gone-1") == []
    [line] = audit_lines(caplog)
    assert line["outcome"] == "already_gone"
    assert line["guild_id"] == guild.id  # known from the cached copy


def test_missing_permissions_is_a_clear_403_and_still_evicts(
    api: LocalRun,
    emulator: DiscordEmulator,
    dynamodb: Any,
    table_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    locked = emulator.state.add_guild("Locked", manage_guild=False)
    emulator.state.add_invite(locked, code="locked-1")
    assert requests.get(f"{api.url}/invites/locked-1", timeout=5).status_code == 200
    caplog.set_level(logging.INFO)
    response = delete(api, "locked-1", **bearer(api.admin_token))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "missing_permissions"
    assert "Manage Channels" in error["message"]
    assert "Manage Guild" in error["message"]
    assert emulator.state.find_invite("locked-1") is not None
    assert cached_variants(dynamodb, table_name, "locked-1") == []
    [line] = audit_lines(caplog)
    assert (line["outcome"], line["guild_id"]) == ("forbidden", locked.id)


def test_channel_permission_is_enough(api: LocalRun, emulator: DiscordEmulator) -> None:
    locked = emulator.state.add_guild("Channel mods", manage_guild=False)
    invite = emulator.state.add_invite(locked, code="chan-1", channel_id="555")
    locked.manage_channels.add(invite.channel["id"])
    assert delete(api, "chan-1", **bearer(api.admin_token)).status_code == 200


def test_discord_down_is_reported_and_still_evicts(
    api: LocalRun, emulator: DiscordEmulator, guild: Guild, dynamodb: Any, table_name: str
) -> None:
    emulator.state.add_invite(guild, code="flaky-1")
    assert requests.get(f"{api.url}/invites/flaky-1", timeout=5).status_code == 200
    emulator.state.inject(Fault(status=502, route=DELETE_ROUTE))
    response = delete(api, "flaky-1", **bearer(api.admin_token))
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
    assert cached_variants(dynamodb, table_name, "flaky-1") == []


def test_eviction_failure_says_retry(
    start_api: Callable[..., LocalRun], emulator: DiscordEmulator, guild: Guild
) -> None:
    from invite_proxy_local.dynamodb import start_moto_server

    server, endpoint = start_moto_server()
    run = start_api(AWS_ENDPOINT_URL_DYNAMODB=endpoint, DYNAMODB_TIMEOUT="0.3")
    emulator.state.add_invite(guild, code="stuck-1")
    assert requests.get(f"{run.url}/invites/stuck-1", timeout=5).status_code == 200
    server.stop()
    response = delete(run, "stuck-1", **bearer(run.admin_token))
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "cache_eviction_failed"
    assert "retry the DELETE" in error["message"]
    assert emulator.state.find_invite("stuck-1") is None  # Discord did delete it


def test_a_lookup_racing_a_delete_does_not_cache_the_revoked_invite(
    moto_endpoint: str, table_name: str, emulator: DiscordEmulator, guild: Guild
) -> None:
    """Two instances: one fetches the invite slowly while the other revokes it."""
    # Imported here: Powertools reads its namespace from the environment the fixtures set.
    from invite_proxy.edges.wiring import api_services

    use_local_servers(moto_endpoint, table_name, emulator)
    lookups = api_services(ApiSettings.from_env()).lookups
    revocations = api_services(ApiSettings.from_env()).revocations
    invite = emulator.state.add_invite(guild, code="race-1")
    body = json.dumps(emulator.state.invite_body(invite, with_counts=False))
    # Discord answers the lookup with the live invite, but only after the DELETE went through.
    emulator.state.inject(Fault(status=200, body=body, delay=1.0, route="GET /invites/{code}"))
    with ThreadPoolExecutor(1) as pool:
        slow_lookup = pool.submit(lookups.lookup, InviteQuery.parse("race-1", None))
        time.sleep(0.3)
        revocations.revoke(
            "race-1", None, actor="test", source="api", deadline=Deadline(time.time() + 8)
        )
        assert slow_lookup.result().found  # it saw the invite alive, and says so
    assert (
        cached_variants(boto3.client("dynamodb", endpoint_url=moto_endpoint), table_name, "race-1")
        == []
    )
    after = lookups.lookup(InviteQuery.parse("race-1", None))  # asks Discord: gone
    assert (after.found, after.cache_status.value) == (False, "MISS")
