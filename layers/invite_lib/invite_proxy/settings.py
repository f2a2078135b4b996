"""Typed configuration, parsed once from environment variables: one model per function.

Each function reads only its own model, so the authorizer does not need the
cache table it never uses. Variables a model does not know are ignored: the
local run gives every function the same environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from invite_proxy.aws_clients import SLOW_CALL_SECONDS, worst_call_seconds
from invite_proxy.cache_policy import CachePolicy
from invite_proxy.validation import problems

VERSION = "0.1.0"
DISCORD_API_BASE_URL = "https://discord.com/api/v10"
PROJECT_URL = "https://github.com/discord-invite-proxy/discord-invite-proxy"
# Read once per cache period and only when needed, so it can afford more than DynamoDB gets.
SECRETS_MANAGER_TIMEOUT = 2.0
# The reserve for one revocation assumes its code is cached in at most this many variants
# (with counts or not, with no scheduled event or one): each adds two DynamoDB deletes.
# Callers choose variants (any event id), so this is an assumption, not a limit.
RESERVE_VARIANTS = 4


class SettingsError(ValueError):
    """Configuration is missing or malformed; raised at start-up, never per request."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        # An empty variable means "not set", as it does for SAM parameters left blank.
        values = {key: value for key, value in source.items() if value != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise SettingsError(f"Invalid configuration: {'; '.join(problems(exc))}") from None


class AuthorizerSettings(_Settings):
    """The admin authorizer: where the admin token hashes are, and how long to trust them."""

    # Deployed, a Secrets Manager secret; locally, the same JSON in ADMIN_TOKENS.
    # The secret id wins when both are set.
    admin_tokens_secret_id: str | None = Field(None, validation_alias="ADMIN_TOKENS_SECRET_ID")
    admin_tokens: SecretStr | None = Field(None, validation_alias="ADMIN_TOKENS")
    # How soon a token removed from the secret stops working.
    admin_tokens_cache_seconds: int = Field(
        60, ge=0, le=3600, validation_alias="ADMIN_TOKENS_CACHE_SECONDS"
    )


class DiscordSettings(_Settings):
    """What every function that calls Discord reads: the table, Discord, and the guard."""

    table_name: str = Field(validation_alias="CACHE_TABLE_NAME", min_length=3)
    dynamodb_timeout: float = Field(1.0, gt=0, le=10, validation_alias="DYNAMODB_TIMEOUT")
    # After the table fails, calls skip it this long before one tries it again.
    table_circuit_seconds: float = Field(
        5.0, ge=0, le=300, validation_alias="TABLE_CIRCUIT_SECONDS"
    )

    discord_api_base_url: str = Field(
        DISCORD_API_BASE_URL, validation_alias="DISCORD_API_BASE_URL", pattern=r"^https?://"
    )
    # Deployed: the Secrets Manager secret whose string is the raw bot token.
    discord_token_secret_id: str | None = Field(None, validation_alias="DISCORD_TOKEN_SECRET_ID")
    # Local run only: the token itself. Ignored when a secret id is set.
    discord_bot_token: SecretStr | None = Field(None, validation_alias="DISCORD_BOT_TOKEN")
    token_cache_seconds: int = Field(300, ge=0, validation_alias="TOKEN_CACHE_SECONDS")
    user_agent_url: str = Field(PROJECT_URL, validation_alias="DISCORD_USER_AGENT_URL")
    discord_connect_timeout: float = Field(
        1.5, gt=0, le=10, validation_alias="DISCORD_CONNECT_TIMEOUT"
    )
    discord_read_timeout: float = Field(4.0, gt=0, le=25, validation_alias="DISCORD_READ_TIMEOUT")

    # The guard: see the README's "Never get the bot banned".
    rate_limit_wait_seconds: float = Field(
        0.5, ge=0, le=5, validation_alias="RATE_LIMIT_WAIT_SECONDS"
    )
    fleet_calls_per_second: int = Field(40, ge=1, le=50, validation_alias="FLEET_CALLS_PER_SECOND")
    token_lock_seconds: float = Field(60, ge=0, le=3600, validation_alias="TOKEN_LOCK_SECONDS")
    cloudflare_block_seconds: float = Field(
        600, ge=0, le=86_400, validation_alias="CLOUDFLARE_BLOCK_SECONDS"
    )
    invalid_warn_threshold: int = Field(
        1000, ge=1, le=10_000, validation_alias="INVALID_WARN_THRESHOLD"
    )
    # How many instances the function may run at once (the template's reserved concurrency):
    # while the table is down, each keeps to this share of the fleet's rate and budget.
    max_concurrency: int = Field(10, ge=1, le=10_000, validation_alias="MAX_CONCURRENCY")
    instance_calls_per_second_setting: int | None = Field(
        None, ge=1, le=50, validation_alias="INSTANCE_CALLS_PER_SECOND"
    )

    @property
    def user_agent(self) -> str:
        return f"DiscordBot ({self.user_agent_url}, {VERSION})"

    @property
    def instance_calls_per_second(self) -> int:
        """This instance's share of the fleet's rate, kept to while the table is down."""
        share = max(1, self.fleet_calls_per_second // self.max_concurrency)
        return self.instance_calls_per_second_setting or share

    @property
    def attempt_seconds(self) -> float:
        """The longest one Discord call can take: connect, then read."""
        return self.discord_connect_timeout + self.discord_read_timeout

    @property
    def dynamodb_call_seconds(self) -> float:
        return worst_call_seconds(self.dynamodb_timeout)

    @property
    def secret_read_seconds(self) -> float:
        return worst_call_seconds(SECRETS_MANAGER_TIMEOUT)

    @property
    def revocation_followup_seconds(self) -> float:
        """Kept back from a DELETE's Discord call for what must follow it: the guard's
        record of Discord's answer and the eviction, at a slow table's pace. A table slower
        still cuts the eviction short, which is reported (cache_eviction_failed), never late."""
        from invite_proxy.dynamodb.cache import eviction_calls
        from invite_proxy.upstream_guard import OBSERVE_CALLS

        return (OBSERVE_CALLS + eviction_calls(RESERVE_VARIANTS)) * SLOW_CALL_SECONDS


class ApiSettings(DiscordSettings):
    """The API function: lookups (cache, coalescing, retries, budget) and DELETE."""

    allowed_guild_ids: str | None = Field(
        None, validation_alias="ALLOWED_GUILD_IDS", pattern=r"^[0-9]{1,20}(,[0-9]{1,20})*$"
    )
    upstream_retries: int = Field(2, ge=0, le=5, validation_alias="UPSTREAM_RETRIES")
    lookup_deadline_seconds: float = Field(
        8.0, gt=0, le=28, validation_alias="LOOKUP_DEADLINE_SECONDS"
    )
    lookup_budget_per_10_minutes: int = Field(
        200, ge=0, le=30_000, validation_alias="LOOKUP_BUDGET_PER_10_MINUTES"
    )
    coalesce_wait_seconds: float = Field(2.0, ge=0, le=10, validation_alias="COALESCE_WAIT_SECONDS")
    # After a failed fetch, the fleet answers from that failure this long instead of retrying it.
    failure_hold_seconds: float = Field(
        2.0, ge=0, le=30, validation_alias="LOOKUP_FAILURE_HOLD_SECONDS"
    )

    cache_fresh_seconds: int = Field(60, ge=1, validation_alias="CACHE_FRESH_SECONDS")
    cache_max_age_seconds: int = Field(86_400, ge=1, validation_alias="CACHE_MAX_AGE_SECONDS")
    negative_cache_seconds: int = Field(60, ge=0, validation_alias="NEGATIVE_CACHE_SECONDS")
    stale_if_error_seconds: int = Field(3_600, ge=0, validation_alias="STALE_IF_ERROR_SECONDS")
    stale_while_revalidate_seconds: int = Field(
        60, ge=0, validation_alias="STALE_WHILE_REVALIDATE_SECONDS"
    )

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
    def instance_lookup_budget(self) -> int:
        """This instance's share of the lookup budget, kept to while the table is down."""
        budget = self.lookup_budget_per_10_minutes
        return max(1, budget // self.max_concurrency) if budget else 0

    @property
    def lease_seconds(self) -> float:
        """A fetch lease outlasts the holder's whole lookup and a normal cache write, with
        slack: a live holder keeps its lease, a crashed one loses it soon."""
        return self.lookup_deadline_seconds + 2 * self.dynamodb_timeout + 1.0


class RevokerSettings(DiscordSettings):
    """The revoker function: rule runs, and where their summaries are posted."""

    # Optional Discord webhook for rule-run summaries: its URL is a secret (it holds a token).
    revocation_webhook_secret_id: str | None = Field(
        None, validation_alias="REVOCATION_WEBHOOK_SECRET_ID"
    )
    revocation_webhook_url: SecretStr | None = Field(
        None, validation_alias="REVOCATION_WEBHOOK_URL"
    )
    webhook_timeout: float = Field(3.0, gt=0, le=10, validation_alias="WEBHOOK_TIMEOUT")

    @property
    def has_webhook(self) -> bool:
        return bool(self.revocation_webhook_secret_id or self.revocation_webhook_url)

    @property
    def report_seconds(self) -> float:
        """Kept at the end of a run for its report: the summary and metrics, and the
        webhook's post. Its URL, when a secret's cached copy has run out, is read in the
        same time: a slow read leaves the post less, and both end before the invocation."""
        from invite_proxy.rule_runner import REPORTING_SECONDS

        return REPORTING_SECONDS + (self.webhook_timeout if self.has_webhook else 0.0)

    @property
    def reserve_seconds(self) -> float:
        """The worst case of one revocation step and the report after it.

        A run starts a step only with this much time left, and no wait inside a step
        lasts past the moment that would leave less. Each count comes from the module
        that makes the calls.
        """
        from invite_proxy.dynamodb.cache import eviction_calls
        from invite_proxy.upstream_guard import ADMIT_CALLS, OBSERVE_CALLS

        table_calls = ADMIT_CALLS + OBSERVE_CALLS + eviction_calls(RESERVE_VARIANTS)
        return (
            self.attempt_seconds
            + table_calls * self.dynamodb_call_seconds
            + self.secret_read_seconds  # the bot token, re-read when its cache runs out
            + self.report_seconds
        )
