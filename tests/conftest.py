"""Shared fixtures: real local servers (moto, Discord emulator, local API) over real HTTP."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from discord_emulator import DiscordEmulator, EmulatorState
from discord_emulator.state import Guild
from invite_proxy_local import runner
from invite_proxy_local.dynamodb import ensure_table, start_moto_server
from invite_proxy_local.gateway import ExecutionEnvironment, LambdaContext
from invite_proxy_local.template import Template

BOT_TOKEN = "test-bot-token-d5f1e0"
# Powertools reads these when invite_proxy.observability is first imported, which may be
# while test modules are collected, before any fixture runs.
TEST_POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME": "invite-proxy",
    "POWERTOOLS_METRICS_NAMESPACE": "InviteProxyTest",
}
os.environ.update(TEST_POWERTOOLS)


@pytest.fixture(scope="session", autouse=True)
def aws_environment() -> Iterator[None]:
    """No test may reach real AWS: dummy credentials, one region."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith(("AWS_", "DISCORD_", "CACHE_", "POWERTOOLS_")):
            del os.environ[key]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        **TEST_POWERTOOLS,
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def isolated_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def template() -> Template:
    return Template()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server, endpoint = start_moto_server()
    yield endpoint
    server.stop()


@pytest.fixture
def dynamodb(moto_endpoint: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=moto_endpoint)


@pytest.fixture
def table_name(template: Template, moto_endpoint: str) -> str:
    name = f"invites-{uuid.uuid4().hex[:10]}"
    ensure_table(template, name, moto_endpoint)
    return name


@pytest.fixture
def emulator() -> Iterator[DiscordEmulator]:
    with DiscordEmulator(EmulatorState(tokens={BOT_TOKEN})) as server:
        yield server


@pytest.fixture
def guild(emulator: DiscordEmulator) -> Guild:
    return emulator.state.add_guild("Test Guild", member_count=42, presence_count=7)


def use_local_servers(moto_endpoint: str, table_name: str, emulator: DiscordEmulator) -> None:
    """Point the functions' settings at moto and the emulator, as a deployment points at AWS."""
    os.environ.update(
        AWS_ENDPOINT_URL_DYNAMODB=moto_endpoint,
        CACHE_TABLE_NAME=table_name,
        DISCORD_API_BASE_URL=emulator.base_url,
        DISCORD_CDN_URL=emulator.cdn_url,
        DISCORD_BOT_TOKEN=BOT_TOKEN,
    )


@pytest.fixture
def start_api(
    moto_endpoint: str, table_name: str, emulator: DiscordEmulator
) -> Iterator[Callable[..., runner.LocalRun]]:
    """Start the local run (gateway + real handler) against moto and the emulator."""
    runs: list[runner.LocalRun] = []

    def start(**env: str) -> runner.LocalRun:
        use_local_servers(moto_endpoint, table_name, emulator)
        os.environ["ALLOWED_ORIGINS"] = "https://app.example.org,https://admin.example.org"
        # One instance, in this process, unless a test asks for a fleet: tests look inside.
        os.environ["LOCAL_MAX_INSTANCES"] = "0"
        os.environ.update(env)
        web_port = int(env.get("WEB_PORT", "0"))  # the pages only when a test asks
        run = runner.start(port=0, web_port=web_port, announce=lambda _: None)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.stop()


@pytest.fixture
def api(start_api: Callable[..., runner.LocalRun]) -> runner.LocalRun:
    return start_api()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScriptedContext(LambdaContext):
    """A Lambda context whose remaining time a test decides."""

    def __init__(self, remaining_ms: Callable[[], int]) -> None:
        super().__init__(
            function_name="RevokerFunction", memory_limit_in_mb=512, timeout_seconds=300
        )
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining_ms()


@pytest.fixture
def revoker(
    template: Template, moto_endpoint: str, table_name: str, emulator: DiscordEmulator
) -> Callable[..., Callable[..., Any]]:
    """Load the revoker function as Lambda would; returns ``invoke(rule, context=None)``."""

    def load(**env: str) -> Callable[..., Any]:
        use_local_servers(moto_endpoint, table_name, emulator)
        os.environ.update(DISCORD_READ_TIMEOUT="2", DISCORD_CONNECT_TIMEOUT="0.5")
        os.environ.update(env)
        environment = ExecutionEnvironment(template.functions()["RevokerFunction"])

        def invoke(rule: Any, context: LambdaContext | None = None) -> Any:
            return environment.invoke(rule, context)

        return invoke

    return load
