"""Secrets Manager strings: cached for their time, re-read after it, a failure never cached."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from invite_proxy.adapters.secrets import _SecretsManagerString, bot_token
from invite_proxy.domain.deadline import NO_DEADLINE
from invite_proxy.domain.errors import CredentialsUnavailable
from tests.unit.fakes import FakeClock


class SecretsManager:
    """get_secret_value, as boto3's client answers it, with a value that can change."""

    def __init__(self, value: str) -> None:
        self.value, self.reads, self.down = value, 0, False

    def get_secret_value(self, *, SecretId: str) -> dict[str, Any]:
        self.reads += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.example")
        return {"Name": SecretId, "SecretString": self.value}


def source(client: SecretsManager, clock: FakeClock, cache_seconds: int) -> _SecretsManagerString:
    secret = _SecretsManagerString(
        "bot-token",
        cache_seconds=cache_seconds,
        timeout=1.0,
        clock=clock,
    )
    secret._client = client  # type: ignore[assignment]
    return secret


def test_a_read_is_cached_for_its_time_then_read_again() -> None:
    clock, client = FakeClock(), SecretsManager("token-1")
    secret = source(client, clock, cache_seconds=300)
    assert (secret(NO_DEADLINE), secret(NO_DEADLINE)) == ("token-1", "token-1")
    assert client.reads == 1
    client.value = "token-2"  # rotated
    clock.advance(299)
    assert secret(NO_DEADLINE) == "token-1"
    clock.advance(1)
    assert secret(NO_DEADLINE) == "token-2"
    assert client.reads == 2


def test_no_cache_reads_every_time() -> None:
    clock, client = FakeClock(), SecretsManager("token-1")
    secret = source(client, clock, cache_seconds=0)
    secret(NO_DEADLINE), secret(NO_DEADLINE)
    assert client.reads == 2


def test_a_failed_read_is_not_cached_and_names_the_secret_not_the_value() -> None:
    clock, client = FakeClock(), SecretsManager("token-1")
    secret = source(client, clock, cache_seconds=300)
    client.down = True
    with pytest.raises(CredentialsUnavailable, match="bot-token") as failed:
        secret(NO_DEADLINE)
    assert "token-1" not in str(failed.value.detail)
    client.down = False
    assert secret(NO_DEADLINE) == "token-1"  # the next request reads it, as soon as it can
    assert client.reads == 2


def test_an_empty_secret_is_an_error() -> None:
    secret = source(SecretsManager("  "), FakeClock(), cache_seconds=300)
    with pytest.raises(CredentialsUnavailable, match="holds no string"):
        secret(NO_DEADLINE)


def test_a_bot_token_secret_holding_json_is_refused_without_echoing_it() -> None:
    read = bot_token(lambda _deadline: '{"token": "abc.def"}')
    with pytest.raises(CredentialsUnavailable) as refused:
        read(NO_DEADLINE)
    assert "abc.def" not in str(refused.value.detail)
