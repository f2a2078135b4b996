"""The README's run command, as a user gets it: a process, a port, logs on stdout."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from discord_emulator import DiscordEmulator
from tests.conftest import closed_port
from tests.e2e.local_processes import Process, clean_env

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def local_run() -> Iterator[tuple[Process, str]]:
    port = closed_port()
    process = Process(clean_env(PORT=str(port)))
    yield process, f"http://127.0.0.1:{port}"
    process.stop()


def test_run_defaults_to_the_emulator_and_announces_it(local_run: tuple[Process, str]) -> None:
    process, url = local_run
    banner = process.wait_for("CORS:")
    text = "".join(process.lines)
    assert f"Invite proxy listening on {url}" in text
    assert "BUILT-IN EMULATOR" in text
    assert "embedded moto server" in text
    assert "CORS" in banner

    first = requests.get(f"{url}/invites/proxy-demo?with_counts=true", timeout=10)
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "MISS"
    assert first.json()["guild"]["vanity_url_code"] == "proxy-demo"
    assert (
        requests.get(f"{url}/invites/proxy-demo?with_counts=true", timeout=10).headers["X-Cache"]
        == "HIT"
    )
    assert requests.get(f"{url}/invites/futurefield", timeout=10).json()["profile"]["tag"] == "DEMO"

    records = process.json_lines(until='"CacheHit"')
    logs = [r for r in records if r.get("message") == "lookup complete"]
    miss, hit = logs[0], logs[1]
    assert miss["cache"] == "MISS"
    assert hit["cache"] == "HIT"
    for key in ("correlation_id", "route", "code", "cold_start", "function_request_id"):
        assert key in miss, key
    assert miss["route"] == "GET /invites/{code}"
    assert miss["code"] == "proxy-demo"
    assert miss["upstream_status"] == 200
    assert miss["upstream_latency_ms"] > 0
    assert "upstream_status" not in hit  # keys are cleared between requests
    emf = [r for r in records if "_aws" in r]
    names = {m["Name"] for r in emf for d in r["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"ColdStart", "CacheMiss", "CacheHit", "UpstreamCall", "UpstreamLatency"} <= names
    token_lines = [line for line in process.lines if "local-emulator-" in line]
    assert token_lines == []  # the token is never logged

    # DELETE takes the admin token the run made up and printed.
    [admin_line] = [line for line in process.lines if "Admin:" in line]
    admin_token = admin_line.split("Bearer ", 1)[1].split()[0]
    assert requests.delete(f"{url}/invites/usedup", timeout=10).status_code == 401
    deleted = requests.delete(
        f"{url}/invites/usedup", headers={"Authorization": f"Bearer {admin_token}"}, timeout=10
    )
    assert deleted.status_code == 200
    assert requests.get(f"{url}/invites/usedup", timeout=10).status_code == 404
    records = process.json_lines(until='"invite revocation"')
    [audit] = [r["audit"] for r in records if r.get("message") == "invite revocation"]
    assert (audit["actor"], audit["code"], audit["outcome"]) == ("local-admin", "usedup", "revoked")
    assert [line for line in process.lines if admin_token in line] == [admin_line]


def test_local_admin_token_is_taken_from_the_environment() -> None:
    port = closed_port()
    token = "my-local-admin-token-123"
    process = Process(clean_env(PORT=str(port), LOCAL_ADMIN_TOKEN=token))
    try:
        process.wait_for("CORS:")
        assert not [line for line in process.lines if token in line]  # yours: not echoed
        url = f"http://127.0.0.1:{port}/invites/tempjoin"
        wrong = requests.delete(url, headers={"Authorization": "Bearer nope"}, timeout=10)
        assert wrong.status_code == 403
        right = requests.delete(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert right.status_code == 200
    finally:
        process.stop()


def test_port_and_origins_are_configurable() -> None:
    port = closed_port()
    process = Process(clean_env(PORT=str(port), ALLOWED_ORIGINS="https://x.example"))
    try:
        process.wait_for("CORS:")
        response = requests.get(
            f"http://127.0.0.1:{port}/invites/hourly01",
            headers={"Origin": "https://x.example"},
            timeout=10,
        )
        assert response.headers["Access-Control-Allow-Origin"] == "https://x.example"
    finally:
        process.stop()


@pytest.mark.parametrize("variable", ["PORT", "WEB_PORT"])
def test_a_busy_port_is_named_with_the_variable_that_moves_it(variable: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ports = {"PORT": str(closed_port()), "WEB_PORT": str(closed_port()), variable: str(busy)}
        result = _command(sys.executable, "-m", "invite_proxy_local", **ports)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"Port {busy} is already in use" in result.stderr
    assert f"{variable}=<port> make run" in result.stderr


def test_external_dynamodb_endpoint_gets_the_table_created(moto_endpoint: str) -> None:
    port = closed_port()
    process = Process(
        clean_env(
            PORT=str(port), AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint, CACHE_TABLE_NAME="ext-table-1"
        )
    )
    try:
        line = process.wait_for("DynamoDB:")
        assert moto_endpoint in line
        assert "(created)" in line
        requests.get(f"http://127.0.0.1:{port}/invites/proxy-demo", timeout=10)
        client = boto3.client("dynamodb", endpoint_url=moto_endpoint)
        items = client.scan(TableName="ext-table-1")["Items"]
        # The answer, cached in that table (beside the sample guild's mirrored list).
        assert {"pk": {"S": "invite#proxy-demo"}, "sk": {"S": "variant#counts=0#event=-"}} in [
            {"pk": i["pk"], "sk": i["sk"]} for i in items
        ]
    finally:
        process.stop()


def test_token_from_secrets_manager_reaches_discord_and_never_the_logs(
    moto_endpoint: str, emulator: DiscordEmulator
) -> None:
    token = "sm-token-7f3a9c"
    emulator.state.tokens = {token}
    guild = emulator.state.add_guild("G")
    emulator.state.add_invite(guild, code="secret-1")
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint)
    arn = secrets.create_secret(Name=f"discord-token-{time.time_ns()}", SecretString=token)["ARN"]
    port = closed_port()
    process = Process(
        clean_env(
            PORT=str(port),
            AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
            AWS_ENDPOINT_URL_SECRETS_MANAGER=moto_endpoint,
            CACHE_TABLE_NAME="secret-table-1",
            DISCORD_API_BASE_URL=emulator.base_url,
            DISCORD_TOKEN_SECRET_ID=arn,
            POWERTOOLS_LOG_LEVEL="DEBUG",
        )
    )
    try:
        process.wait_for("CORS:")
        for _ in range(2):
            response = requests.get(
                f"http://127.0.0.1:{port}/invites/secret-1?with_counts=1", timeout=10
            )
            assert response.status_code == 200, "".join(process.lines)
            requests.get(f"http://127.0.0.1:{port}/invites/other-{_}", timeout=10)
        sent = emulator.state.requests_to("GET /invites/{code}")
        assert {r.headers["authorization"] for r in sent} == {f"Bot {token}"}
        process.json_lines(until='"CacheMiss"')
        assert not [line for line in process.lines if token in line]
    finally:
        process.stop()


def _command(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A command run from the clone as a reader runs it, with a local run's clean variables."""
    return subprocess.run(
        list(args), cwd=REPO, env=clean_env(**env), capture_output=True, text=True, timeout=120
    )


def _invoke(function: str, event: str, **env: str) -> subprocess.CompletedProcess[str]:
    return _command(sys.executable, "-m", "invite_proxy_local.invoke", function, event, **env)


def test_invoke_runs_a_schedule_input_like_sam_local_invoke() -> None:
    result = _invoke("RevokerFunction", "events/revoke_rule_sweep.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["would_revoke"] == ["hourly01", "shortlived"]
    # No local run is up: it says it made its own, and announces no server it does not run.
    assert "with its own embedded DynamoDB and Discord emulator" in result.stderr
    assert "BUILT-IN EMULATOR" in result.stderr
    assert "listening" not in result.stderr


def test_a_run_leaves_word_of_itself_and_its_admin_token(tmp_path: Path) -> None:
    port = closed_port()
    process = Process(clean_env(PORT=str(port), LOCAL_RUN_DIR=str(tmp_path)))
    try:
        process.wait_for("Ready.")
        state = json.loads((tmp_path / "local-run.json").read_text())
        assert state["url"] == f"http://127.0.0.1:{port}"
        assert state["discord_source"] == "emulator"
        token_file = tmp_path / "admin-token"
        for path in (tmp_path / "local-run.json", token_file):
            assert path.stat().st_mode & 0o777 == 0o600  # this user's alone
        # The README's DELETE example reads the token from here.
        token = token_file.read_text().strip()
        deleted = requests.delete(
            f"http://127.0.0.1:{port}/invites/tempjoin",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert deleted.status_code == 200
    finally:
        process.stop()
    assert list(tmp_path.iterdir()) == []  # gone with the run


def test_invoke_uses_the_running_local_runs_table_and_discord(tmp_path: Path) -> None:
    """A rule run sees what the local API has done: the same emulator, the same table."""
    port = closed_port()
    process = Process(clean_env(PORT=str(port), LOCAL_RUN_DIR=str(tmp_path)))
    try:
        process.wait_for("Ready.")
        token = (tmp_path / "admin-token").read_text().strip()
        revoked = requests.delete(
            f"http://127.0.0.1:{port}/invites/hourly01",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert revoked.status_code == 200
        result = _invoke(
            "RevokerFunction", "events/revoke_rule_sweep.json", LOCAL_RUN_DIR=str(tmp_path)
        )
        assert result.returncode == 0, result.stderr
        assert f"against the running local run (pid {process.proc.pid}" in result.stderr
        summary = json.loads(result.stdout.splitlines()[-1])
        assert summary["would_revoke"] == ["shortlived"]  # hourly01 is gone from its Discord
        # The run's admin tokens too: its token passes an invoked authorizer.
        event = json.loads((REPO / "events" / "authorize_admin.json").read_text())
        event["headers"]["authorization"] = f"Bearer {token}"
        event_file = tmp_path / "authorize.json"
        event_file.write_text(json.dumps(event))
        authorized = _invoke(
            "AdminAuthorizerFunction", str(event_file), LOCAL_RUN_DIR=str(tmp_path)
        )
        assert authorized.returncode == 0, authorized.stderr
        assert json.loads(authorized.stdout.splitlines()[-1])["isAuthorized"] is True
    finally:
        process.stop()


def test_invoke_reports_a_failed_invocation(tmp_path: Path) -> None:
    bad = tmp_path / "bad_rule.json"
    bad.write_text(json.dumps({"name": "bad", "codes": ["a/b"]}))
    result = _invoke("RevokerFunction", str(bad))
    assert result.returncode == 1
    error = json.loads(result.stdout.splitlines()[-1])
    assert error["errorType"] == "InvalidInput"
    assert "codes.0" in error["errorMessage"]


def test_the_smoke_check_passes_against_the_local_run(local_run: tuple[Process, str]) -> None:
    """`make smoke` is what an operator runs against a new stack; here, against make run."""
    process, url = local_run
    process.wait_for("CORS:")
    process.keep_reading()
    result = _command("make", "--no-print-directory", "smoke", f"API_URL={url}", "CODE=proxy-demo")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(lines) == 4
    assert all(line.startswith("ok") for line in lines), lines
    assert "4 of 4 checks passed" in result.stdout


def test_the_smoke_check_fails_loudly_for_an_origin_the_api_refuses(
    local_run: tuple[Process, str],
) -> None:
    process, url = local_run
    process.wait_for("CORS:")
    process.keep_reading()
    refused = "https://not-allowed.example"
    result = _command(sys.executable, "-m", "invite_proxy_local.smoke", url, "proxy-demo", refused)
    assert result.returncode == 1
    [lookup] = [line for line in result.stdout.splitlines() if "GET /invites" in line]
    assert lookup.startswith("FAIL")
    assert "Access-Control-Allow-Origin" in lookup
    assert "DELETE with no token: 401" in result.stdout  # the other checks still ran


def test_make_smoke_says_how_to_call_it() -> None:
    result = _command("make", "--no-print-directory", "smoke")
    assert result.returncode != 0
    assert "usage: make smoke API_URL=" in result.stdout
