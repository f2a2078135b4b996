"""Typed configuration, parsed once from environment variables: one class per function.

Each function reads only its own class, so the authorizer does not need the
cache table it never uses. Variables a class does not know are ignored: the
local run gives every function the same environment.

Parsed by a few lines here, not by pydantic: every cold start parses its
settings, and building a pydantic model for them costs more than the rest of
the handler's own modules. The errors are as clear: each names its variable.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Self

from invite_proxy.domain import costs
from invite_proxy.domain.cache_policy import CachePolicy

VERSION = "0.1.0"
DISCORD_API_BASE_URL = "https://discord.com/api/v10"
DISCORD_CDN_URL = "https://cdn.discordapp.com"
PROJECT_URL = "https://github.com/discord-invite-proxy/discord-invite-proxy"


class SettingsError(ValueError):
    """Configuration is missing or malformed; raised at start-up, never per request."""


class Secret:
    """A secret setting's value: kept out of repr and logs; read with get_secret_value()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class _Variable:
    """How one environment variable becomes one setting, and what it must satisfy."""

    name: str
    convert: Callable[[str], Any]
    kind: str  # what convert expects, for the error message
    default: Any = MISSING
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    min_length: int | None = None
    pattern: tuple[str, str] | None = None  # (regular expression, what it means)

    def parse(self, raw: str | None) -> Any:
        """The setting's value; ValueError says what is wrong, never with the value."""
        if raw is None:
            if self.default is MISSING:
                raise ValueError("is required")
            return self.default
        try:
            value = self.convert(raw.strip() if self.kind != "text" else raw)
        except ValueError:
            raise ValueError(f"must be {self.kind}") from None
        if self.ge is not None and value < self.ge:
            raise ValueError(f"must be at least {self.ge:g}")
        if self.gt is not None and value <= self.gt:
            raise ValueError(f"must be greater than {self.gt:g}")
        if self.le is not None and value > self.le:
            raise ValueError(f"must be at most {self.le:g}")
        if self.min_length is not None and len(value) < self.min_length:
            raise ValueError(f"must be at least {self.min_length} characters")
        if self.pattern is not None and not re.search(self.pattern[0], value):
            raise ValueError(f"must be {self.pattern[1]}")
        return value


def _finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _setting(variable: _Variable) -> Any:
    return field(metadata={"variable": variable})


def integer(name: str, default: int | Any | None = MISSING, **limits: Any) -> Any:
    return _setting(_Variable(name, int, "a whole number", default, **limits))


def number(name: str, default: float | Any = MISSING, **limits: Any) -> Any:
    return _setting(_Variable(name, _finite, "a number", default, **limits))


def text(name: str, default: str | Any | None = MISSING, **limits: Any) -> Any:
    return _setting(_Variable(name, str, "text", default, **limits))


def secret(name: str) -> Any:
    return _setting(_Variable(name, Secret, "text", None))


@dataclass(frozen=True, kw_only=True)
class _Settings:
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems = []
        for setting in fields(cls):
            variable: _Variable = setting.metadata["variable"]
            # An empty variable means "not set", as it does for SAM parameters left blank.
            raw = source.get(variable.name) or None
            try:
                values[setting.name] = variable.parse(raw)
            except ValueError as exc:
                problems.append(f"{variable.name}: {exc}")
        if problems:
            raise SettingsError(f"Invalid configuration: {'; '.join(problems)}")
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class AuthorizerSettings(_Settings):
    """The admin authorizer: where the admin token hashes are, and how long to trust them."""

    # Deployed, a Secrets Manager secret; locally, the same JSON in ADMIN_TOKENS.
    # The secret id wins when both are set.
    admin_tokens_secret_id: str | None = text("ADMIN_TOKENS_SECRET_ID", None)
    admin_tokens: Secret | None = secret("ADMIN_TOKENS")
    # How soon a token removed from the secret stops working.
    admin_tokens_cache_seconds: int = integer("ADMIN_TOKENS_CACHE_SECONDS", 60, ge=0, le=3600)


@dataclass(frozen=True, kw_only=True)
class DiscordSettings(_Settings):
    """What every function that calls Discord reads: the table, Discord, and the guard."""

    table_name: str = text("CACHE_TABLE_NAME", min_length=3)
    dynamodb_timeout: float = number("DYNAMODB_TIMEOUT", 1.0, gt=0, le=10)
    # After the table fails, calls skip it this long before one tries it again.
    table_circuit_seconds: float = number("TABLE_CIRCUIT_SECONDS", 5.0, ge=0, le=300)

    discord_api_base_url: str = text(
        "DISCORD_API_BASE_URL", DISCORD_API_BASE_URL, pattern=(r"^https?://", "an http(s) URL")
    )
    # Deployed: the Secrets Manager secret whose string is the raw bot token.
    discord_token_secret_id: str | None = text("DISCORD_TOKEN_SECRET_ID", None)
    # Local run only: the token itself. Ignored when a secret id is set.
    discord_bot_token: Secret | None = secret("DISCORD_BOT_TOKEN")
    token_cache_seconds: int = integer("TOKEN_CACHE_SECONDS", 300, ge=0)
    user_agent_url: str = text("DISCORD_USER_AGENT_URL", PROJECT_URL)
    discord_connect_timeout: float = number("DISCORD_CONNECT_TIMEOUT", 1.5, gt=0, le=10)
    discord_read_timeout: float = number("DISCORD_READ_TIMEOUT", 4.0, gt=0, le=25)

    # The guard: see docs/protections.md.
    rate_limit_wait_seconds: float = number("RATE_LIMIT_WAIT_SECONDS", 0.5, ge=0, le=5)
    fleet_calls_per_second: int = integer("FLEET_CALLS_PER_SECOND", 40, ge=1, le=50)
    token_lock_seconds: float = number("TOKEN_LOCK_SECONDS", 60, ge=0, le=3600)
    cloudflare_block_seconds: float = number("CLOUDFLARE_BLOCK_SECONDS", 600, ge=0, le=86_400)
    invalid_warn_threshold: int = integer("INVALID_WARN_THRESHOLD", 1000, ge=1, le=10_000)
    # How many instances the function may run at once (the template's reserved concurrency):
    # while the table is down, each keeps to this share of the fleet's rate and budget.
    max_concurrency: int = integer("MAX_CONCURRENCY", 10, ge=1, le=10_000)
    instance_calls_per_second_setting: int | None = integer(
        "INSTANCE_CALLS_PER_SECOND", None, ge=1, le=50
    )
    # Guild mode: the guilds whose invites the proxy serves, from their own lists.
    allowed_guild_ids: str | None = text(
        "ALLOWED_GUILD_IDS",
        None,
        pattern=(r"^[0-9]{1,20}(,[0-9]{1,20})*$", "guild ids (digits) separated by commas"),
    )

    @property
    def allowed_guilds(self) -> frozenset[str] | None:
        """Guild mode's guilds; None: open mode (docs/protections.md)."""
        if not self.allowed_guild_ids:
            return None
        # A snowflake is a number: 0123 is 123, as a request's guild id is read.
        return frozenset(str(int(guild_id)) for guild_id in self.allowed_guild_ids.split(","))

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
        return costs.discord_attempt_seconds(
            self.discord_connect_timeout, self.discord_read_timeout
        )

    @property
    def dynamodb_call_seconds(self) -> float:
        """One table call's worst case: a call that might take longer than the time left
        is not started."""
        return costs.aws_call_seconds(self.dynamodb_timeout)


@dataclass(frozen=True, kw_only=True)
class ApiSettings(DiscordSettings):
    """The API function: lookups (cache, coalescing, retries, budget) and DELETE."""

    # Guild mode (ALLOWED_GUILD_IDS set): a code no guild lists makes the fleet read the
    # lists again at most this often (docs/protections.md).
    guild_list_min_refresh_seconds: float = number(
        "GUILD_LIST_MIN_REFRESH_SECONDS", 10.0, ge=1, le=3600
    )
    # Guild mode: the code each guild's card shows, when it has no vanity code, before its
    # most used invite that never expires ("<guild id>=<code>,..."; docs/api.md).
    guild_invite_codes: str | None = text(
        "GUILD_INVITE_CODES",
        None,
        pattern=(
            r"^[0-9]{1,20}=[A-Za-z0-9-]{2,32}(,[0-9]{1,20}=[A-Za-z0-9-]{2,32})*$",
            "<guild id>=<invite code> pairs separated by commas",
        ),
    )
    # Where guild icons come from, for the icon route and the image cards (never the browser).
    discord_cdn_url: str = text(
        "DISCORD_CDN_URL", DISCORD_CDN_URL, pattern=(r"^https?://", "an http(s) URL")
    )
    upstream_retries: int = integer("UPSTREAM_RETRIES", 2, ge=0, le=5)
    lookup_deadline_seconds: float = number("LOOKUP_DEADLINE_SECONDS", 8.0, gt=0, le=28)
    # The fleet's lookups of uncached invites: this many at most, one back every 600/n s.
    lookup_budget_per_10_minutes: int = integer(
        "LOOKUP_BUDGET_PER_10_MINUTES", 200, ge=0, le=30_000
    )
    # Each caller's share of it, refilling alike; 0: no shares (docs/protections.md).
    lookup_share_per_caller: int = integer("LOOKUP_SHARE_PER_CALLER", 20, ge=0, le=30_000)
    # Behind the CDN: the secret CloudFront sends as X-Origin-Verify, the proof that a
    # request came through it, so its X-Viewer-Address names the caller. Deployed, a
    # Secrets Manager secret the stack makes; locally, the value itself.
    cdn_origin_secret_id: str | None = text("CDN_ORIGIN_SECRET_ID", None)
    cdn_origin_secret: Secret | None = secret("CDN_ORIGIN_SECRET")
    coalesce_wait_seconds: float = number("COALESCE_WAIT_SECONDS", 2.0, ge=0, le=10)
    # After a failed fetch, the fleet answers from that failure this long instead of retrying it.
    failure_hold_seconds: float = number("LOOKUP_FAILURE_HOLD_SECONDS", 2.0, ge=0, le=30)

    cache_fresh_seconds: int = integer("CACHE_FRESH_SECONDS", 60, ge=1)
    # Each instance answers a hot key from its memory this long after reading it from the
    # table (0: off). Another instance may answer an invite this long after its DELETE.
    memory_cache_seconds: float = number("MEMORY_CACHE_SECONDS", 1.0, ge=0, le=10)
    cache_max_age_seconds: int = integer("CACHE_MAX_AGE_SECONDS", 86_400, ge=1)
    negative_cache_seconds: int = integer("NEGATIVE_CACHE_SECONDS", 60, ge=0)
    stale_if_error_seconds: int = integer("STALE_IF_ERROR_SECONDS", 3_600, ge=0)
    stale_while_revalidate_seconds: int = integer("STALE_WHILE_REVALIDATE_SECONDS", 60, ge=0)

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
    def chosen_guild_invites(self) -> dict[str, str]:
        pairs = [pair.split("=", 1) for pair in (self.guild_invite_codes or "").split(",") if pair]
        return {str(int(guild_id)): code for guild_id, code in pairs}

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


@dataclass(frozen=True, kw_only=True)
class RevokerSettings(DiscordSettings):
    """The revoker function: rule runs, and where their summaries are posted."""

    # Optional Discord webhook for rule-run summaries: its URL is a secret (it holds a token).
    revocation_webhook_secret_id: str | None = text("REVOCATION_WEBHOOK_SECRET_ID", None)
    revocation_webhook_url: Secret | None = secret("REVOCATION_WEBHOOK_URL")
    webhook_timeout: float = number("WEBHOOK_TIMEOUT", 3.0, gt=0, le=10)
    # Revocations in flight at once in a rule run; the DELETE bucket still sets the pace.
    parallel_revocations: int = integer("RULE_PARALLEL_REVOCATIONS", 4, ge=1, le=10)

    @property
    def has_webhook(self) -> bool:
        return bool(self.revocation_webhook_secret_id or self.revocation_webhook_url)

    @property
    def report_seconds(self) -> float:
        """Kept at the end of a run for its report: the summary and metrics, and the
        webhook's post. Its URL, when a secret's cached copy has run out, is read in the
        same time: a slow read leaves the post less, and both end before the invocation."""
        return costs.report_seconds(self.webhook_timeout if self.has_webhook else None)

    @property
    def step_seconds(self) -> float:
        """A rule run starts a step (one Discord call and what follows it) only with this
        much time left: domain/costs.py, rule_step_seconds."""
        return costs.rule_step_seconds(self.attempt_seconds)
