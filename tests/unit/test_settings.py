"""Configuration is parsed once, typed, and fails loudly and clearly."""

from __future__ import annotations

from typing import Any

import pytest

from invite_proxy.aws_clients import client_config, worst_call_seconds
from invite_proxy.settings import (
    VERSION,
    ApiSettings,
    AuthorizerSettings,
    RevokerSettings,
    SettingsError,
)


def test_defaults() -> None:
    settings = ApiSettings.from_env({"CACHE_TABLE_NAME": "invites"})
    assert settings.discord_api_base_url == "https://discord.com/api/v10"
    assert settings.cache_policy.fresh_seconds == 60
    assert settings.user_agent.startswith("DiscordBot (https://")
    assert VERSION in settings.user_agent


def test_values_come_from_the_environment() -> None:
    settings = ApiSettings.from_env(
        {
            "CACHE_TABLE_NAME": "invites",
            "CACHE_FRESH_SECONDS": "5",
            "CACHE_MAX_AGE_SECONDS": "600",
            "NEGATIVE_CACHE_SECONDS": "0",
            "STALE_IF_ERROR_SECONDS": "10",
            "DISCORD_API_BASE_URL": "http://127.0.0.1:1/api/v10",
            "DISCORD_BOT_TOKEN": "s3cret",
        }
    )
    assert settings.cache_policy.fresh_seconds == 5
    assert settings.cache_policy.max_age_seconds == 600
    assert settings.cache_policy.negative_seconds == 0
    assert settings.discord_bot_token is not None
    assert "s3cret" not in repr(settings)  # SecretStr never prints the token


def test_empty_variables_mean_unset() -> None:
    settings = ApiSettings.from_env({"CACHE_TABLE_NAME": "invites", "DISCORD_TOKEN_SECRET_ID": ""})
    assert settings.discord_token_secret_id is None


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({}, "CACHE_TABLE_NAME"),
        ({"CACHE_TABLE_NAME": "t1", "CACHE_FRESH_SECONDS": "soon"}, "CACHE_FRESH_SECONDS"),
        ({"CACHE_TABLE_NAME": "t1", "CACHE_FRESH_SECONDS": "0"}, "CACHE_FRESH_SECONDS"),
        ({"CACHE_TABLE_NAME": "t1", "DISCORD_API_BASE_URL": "discord.com"}, "DISCORD_API_BASE_URL"),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], field: str) -> None:
    with pytest.raises(SettingsError, match=field):
        ApiSettings.from_env(env)


@pytest.mark.parametrize("timeout", [0.1, 1.0, 2.0])
def test_an_aws_calls_worst_case_is_what_its_client_is_configured_to_do(timeout: float) -> None:
    """Every attempt botocore makes may time out connecting and then reading."""
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", config=client_config(timeout))
    config: Any = client.meta.config  # botocore sets these attributes dynamically
    attempts = config.retries["total_max_attempts"]
    per_attempt = config.connect_timeout + config.read_timeout
    backoff = (attempts - 1) * 1.0  # standard mode sleeps at most 1 s before the first retry
    assert attempts == 2  # the README's "retry once"
    assert worst_call_seconds(timeout) == pytest.approx(attempts * per_attempt + backoff)


def test_each_function_reads_only_its_own_settings() -> None:
    # The authorizer starts without the table it never uses.
    assert AuthorizerSettings.from_env({}).admin_tokens_cache_seconds == 60
    revoker = RevokerSettings.from_env({"CACHE_TABLE_NAME": "invites"})
    assert not hasattr(revoker, "cache_fresh_seconds")
    assert revoker.reserve_seconds > revoker.attempt_seconds + revoker.secret_read_seconds
