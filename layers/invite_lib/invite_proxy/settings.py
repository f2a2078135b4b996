"""Typed configuration, parsed once from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from invite_proxy.cache_policy import CachePolicy

VERSION = "0.1.0"
DISCORD_API_BASE_URL = "https://discord.com/api/v10"
PROJECT_URL = "https://github.com/discord-invite-proxy/discord-invite-proxy"


class SettingsError(ValueError):
    """Configuration is missing or malformed; raised at start-up, never per request."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    table_name: str = Field(validation_alias="CACHE_TABLE_NAME", min_length=3)

    discord_api_base_url: str = Field(
        DISCORD_API_BASE_URL, validation_alias="DISCORD_API_BASE_URL", pattern=r"^https?://"
    )
    # Deployed: the Secrets Manager secret whose string is the raw bot token.
    discord_token_secret_id: str | None = Field(None, validation_alias="DISCORD_TOKEN_SECRET_ID")
    # Local run only: the token itself. Ignored when a secret id is set.
    discord_bot_token: SecretStr | None = Field(None, validation_alias="DISCORD_BOT_TOKEN")
    token_cache_seconds: int = Field(300, ge=0, validation_alias="TOKEN_CACHE_SECONDS")
    user_agent_url: str = Field(PROJECT_URL, validation_alias="DISCORD_USER_AGENT_URL")

    # Admin tokens for DELETE (see admin_tokens.py): deployed, a Secrets Manager secret;
    # locally, the same JSON in ADMIN_TOKENS. The secret id wins when both are set.
    admin_tokens_secret_id: str | None = Field(None, validation_alias="ADMIN_TOKENS_SECRET_ID")
    admin_tokens: SecretStr | None = Field(None, validation_alias="ADMIN_TOKENS")
    # How soon a token removed from the secret stops working.
    admin_tokens_cache_seconds: int = Field(
        60, ge=0, le=3600, validation_alias="ADMIN_TOKENS_CACHE_SECONDS"
    )
    # Optional Discord webhook for rule-run summaries: its URL is a secret (it holds a token).
    revocation_webhook_secret_id: str | None = Field(
        None, validation_alias="REVOCATION_WEBHOOK_SECRET_ID"
    )
    revocation_webhook_url: SecretStr | None = Field(
        None, validation_alias="REVOCATION_WEBHOOK_URL"
    )
    webhook_timeout: float = Field(3.0, gt=0, le=10, validation_alias="WEBHOOK_TIMEOUT")

    discord_connect_timeout: float = Field(
        1.5, gt=0, le=10, validation_alias="DISCORD_CONNECT_TIMEOUT"
    )
    discord_read_timeout: float = Field(4.0, gt=0, le=25, validation_alias="DISCORD_READ_TIMEOUT")
    dynamodb_timeout: float = Field(1.0, gt=0, le=10, validation_alias="DYNAMODB_TIMEOUT")

    # Protections: see the README's "Never get the bot banned".
    allowed_guild_ids: str | None = Field(
        None, validation_alias="ALLOWED_GUILD_IDS", pattern=r"^[0-9]{1,20}(,[0-9]{1,20})*$"
    )
    upstream_retries: int = Field(2, ge=0, le=5, validation_alias="UPSTREAM_RETRIES")
    lookup_deadline_seconds: float = Field(
        8.0, gt=0, le=28, validation_alias="LOOKUP_DEADLINE_SECONDS"
    )
    rate_limit_wait_seconds: float = Field(
        0.5, ge=0, le=5, validation_alias="RATE_LIMIT_WAIT_SECONDS"
    )
    lookup_budget_per_10_minutes: int = Field(
        200, ge=0, le=30_000, validation_alias="LOOKUP_BUDGET_PER_10_MINUTES"
    )
    fleet_calls_per_second: int = Field(40, ge=1, le=50, validation_alias="FLEET_CALLS_PER_SECOND")
    token_lock_seconds: float = Field(60, ge=0, le=3600, validation_alias="TOKEN_LOCK_SECONDS")
    cloudflare_block_seconds: float = Field(
        600, ge=0, le=86_400, validation_alias="CLOUDFLARE_BLOCK_SECONDS"
    )
    coalesce_wait_seconds: float = Field(2.0, ge=0, le=10, validation_alias="COALESCE_WAIT_SECONDS")
    # After a failed fetch, the fleet answers from that failure this long instead of retrying it.
    failure_hold_seconds: float = Field(
        2.0, ge=0, le=30, validation_alias="LOOKUP_FAILURE_HOLD_SECONDS"
    )
    invalid_warn_threshold: int = Field(
        1000, ge=1, le=10_000, validation_alias="INVALID_WARN_THRESHOLD"
    )

    cache_fresh_seconds: int = Field(60, ge=1, validation_alias="CACHE_FRESH_SECONDS")
    cache_max_age_seconds: int = Field(86_400, ge=1, validation_alias="CACHE_MAX_AGE_SECONDS")
    negative_cache_seconds: int = Field(60, ge=0, validation_alias="NEGATIVE_CACHE_SECONDS")
    stale_if_error_seconds: int = Field(3_600, ge=0, validation_alias="STALE_IF_ERROR_SECONDS")
    stale_while_revalidate_seconds: int = Field(
        60, ge=0, validation_alias="STALE_WHILE_REVALIDATE_SECONDS"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        # An empty variable means "not set", as it does for SAM parameters left blank.
        values = {key: value for key, value in source.items() if value != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False, include_input=False)
            )
            raise SettingsError(f"Invalid configuration: {problems}") from None

    @property
    def cache_policy(self) -> CachePolicy:
        return CachePolicy(
            fresh_seconds=self.cache_fresh_seconds,
            max_age_seconds=self.cache_max_age_seconds,
            negative_seconds=self.negative_cache_seconds,
            stale_if_error_seconds=self.stale_if_error_seconds,
            stale_while_revalidate_seconds=self.stale_while_revalidate_seconds,
        )

    @property
    def allowed_guilds(self) -> frozenset[str] | None:
        if not self.allowed_guild_ids:
            return None
        return frozenset(self.allowed_guild_ids.split(","))

    @property
    def user_agent(self) -> str:
        return f"DiscordBot ({self.user_agent_url}, {VERSION})"
