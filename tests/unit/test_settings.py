"""Configuration is parsed once, typed, and fails loudly and clearly."""

from __future__ import annotations

import pytest

from invite_proxy.settings import VERSION, ApiSettings, SettingsError


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
