"""Configuration is parsed once, typed, and fails loudly and clearly."""

from __future__ import annotations

from typing import Any

import pytest

from invite_proxy.adapters.aws_clients import client, client_config
from invite_proxy.domain.costs import aws_call_seconds
from invite_proxy.edges.settings import (
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


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "CACHE_TABLE_NAME: is required"),
        ({"CACHE_TABLE_NAME": "ab"}, "CACHE_TABLE_NAME: must be at least 3 characters"),
        ({"CACHE_FRESH_SECONDS": "soon"}, "CACHE_FRESH_SECONDS: must be a whole number"),
        ({"CACHE_FRESH_SECONDS": "1.5"}, "CACHE_FRESH_SECONDS: must be a whole number"),
        ({"CACHE_FRESH_SECONDS": "0"}, "CACHE_FRESH_SECONDS: must be at least 1"),
        ({"DYNAMODB_TIMEOUT": "0"}, "DYNAMODB_TIMEOUT: must be greater than 0"),
        ({"DYNAMODB_TIMEOUT": "nan"}, "DYNAMODB_TIMEOUT: must be a number"),
        ({"DYNAMODB_TIMEOUT": "inf"}, "DYNAMODB_TIMEOUT: must be a number"),
        ({"LOOKUP_DEADLINE_SECONDS": "29"}, "LOOKUP_DEADLINE_SECONDS: must be at most 28"),
        ({"DISCORD_API_BASE_URL": "ftp://x"}, "DISCORD_API_BASE_URL: must be an http(s) URL"),
        ({"ALLOWED_GUILD_IDS": "1,x"}, "ALLOWED_GUILD_IDS: must be guild ids (digits)"),
    ],
)
def test_each_problem_is_worded_plainly(env: dict[str, str], message: str) -> None:
    environ = {"CACHE_TABLE_NAME": "invites", **env} if env else {}
    with pytest.raises(SettingsError) as caught:
        ApiSettings.from_env(environ)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once_and_no_value_is_echoed() -> None:
    with pytest.raises(SettingsError) as caught:
        ApiSettings.from_env({"CACHE_FRESH_SECONDS": "s3cret-ish", "UPSTREAM_RETRIES": "9"})
    message = str(caught.value)
    assert "CACHE_TABLE_NAME" in message
    assert "CACHE_FRESH_SECONDS" in message
    assert "UPSTREAM_RETRIES: must be at most 5" in message
    assert "s3cret-ish" not in message


def test_numbers_may_carry_surrounding_space_and_secrets_keep_theirs() -> None:
    settings = ApiSettings.from_env(
        {"CACHE_TABLE_NAME": "invites", "CACHE_FRESH_SECONDS": " 5 ", "DISCORD_BOT_TOKEN": " t "}
    )
    assert settings.cache_fresh_seconds == 5
    assert settings.discord_bot_token is not None
    assert settings.discord_bot_token.get_secret_value() == " t "


@pytest.mark.parametrize("timeout", [0.1, 1.0, 2.0])
def test_an_aws_calls_worst_case_is_what_its_client_is_configured_to_do(timeout: float) -> None:
    """Every attempt botocore makes may time out connecting and then reading."""
    import boto3

    client = boto3.client("dynamodb", region_name="us-east-1", config=client_config(timeout))
    config: Any = client.meta.config  # botocore sets these attributes dynamically
    attempts = config.retries["total_max_attempts"]
    per_attempt = config.connect_timeout + config.read_timeout
    backoff = (attempts - 1) * 1.0  # standard mode sleeps at most 1 s before the first retry
    assert attempts == 2  # the docs' "retry once" (docs/protections.md)
    assert aws_call_seconds(timeout) == pytest.approx(attempts * per_attempt + backoff)


def test_each_function_reads_only_its_own_settings() -> None:
    # The authorizer starts without the table it never uses.
    assert AuthorizerSettings.from_env({}).admin_tokens_cache_seconds == 60
    revoker = RevokerSettings.from_env({"CACHE_TABLE_NAME": "invites"})
    assert not hasattr(revoker, "cache_fresh_seconds")
    assert revoker.step_seconds > revoker.attempt_seconds  # a step holds one Discord call


def test_a_client_outside_the_layers_models_is_refused_by_name() -> None:
    # The build keeps botocore's models for aws_clients.SERVICES alone.
    with pytest.raises(ValueError, match=r"s3 is not in aws_clients\.SERVICES"):
        client("s3", 1.0)
