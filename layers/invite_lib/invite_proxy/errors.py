"""Domain errors: what can go wrong, independent of how it reaches a caller.

Each error has a stable public ``code`` and a ``public_message`` that is safe to
show to anyone. Upstream internals (Discord's bodies, our token, stack traces)
stay in ``detail`` which is only ever logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class InviteProxyError(Exception):
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal error."
    # Discord's X-RateLimit-* headers, when the error came with them: a 404 still spends the bucket.
    rate_limit_headers: Mapping[str, str] = {}

    def __init__(
        self,
        public_message: str | None = None,
        *,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.public_message = public_message or self.default_message
        self.detail = detail
        self.retry_after = retry_after
        super().__init__(detail or self.public_message)


class InvalidInput(InviteProxyError):
    code = "invalid_request"
    default_message = "The request is invalid."


class PermissionDenied(InviteProxyError):
    """The bot may not do what an authenticated caller asked (Discord's 50013 or 50001)."""

    code = "missing_permissions"
    default_message = (
        "The bot may not delete this invite: it needs Manage Channels on the invite's "
        "channel, or Manage Guild."
    )


class UnknownInvite(InviteProxyError):
    code = "unknown_invite"
    default_message = "Unknown invite."


class CacheUnavailable(InviteProxyError):
    """The cache failed. Lookups degrade around it; a revocation reports it."""

    code = "cache_unavailable"
    default_message = "The cache is unavailable."


class DiscordError(InviteProxyError):
    """Discord answered with something we cannot pass on as a result."""

    code = "upstream_error"
    default_message = "Discord returned an unexpected error."

    def __init__(
        self,
        public_message: str | None = None,
        *,
        status: int | None = None,
        discord_code: int | None = None,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(public_message, detail=detail, retry_after=retry_after)
        self.status = status
        self.discord_code = discord_code


class DiscordUnauthorized(DiscordError):
    code = "upstream_unauthorized"
    default_message = "Discord rejected the proxy's credentials."


class DiscordMissingPermissions(DiscordError):
    code = "missing_permissions"
    default_message = "The bot lacks the permissions or access this needs."


class DiscordRateLimited(DiscordError):
    code = "rate_limited"
    default_message = "Discord is rate limiting the proxy; retry later."

    def __init__(
        self,
        public_message: str | None = None,
        *,
        retry_after: float,
        is_global: bool = False,
        scope: str | None = None,
        bucket: str | None = None,
        status: int | None = 429,
        discord_code: int | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(
            public_message,
            status=status,
            discord_code=discord_code,
            detail=detail,
            retry_after=retry_after,
        )
        self.is_global = is_global
        self.scope = scope
        self.bucket = bucket


class DiscordBlocked(DiscordError):
    """Cloudflare, not Discord, answered: a 403/429 that is not Discord's JSON."""

    code = "upstream_blocked"
    default_message = "Discord is refusing connections from the proxy; retry later."


class DiscordServerError(DiscordError):
    """Discord answered 5xx: its problem, probably passing."""

    code = "upstream_error"
    default_message = "Discord returned a server error."


class DiscordUnavailable(DiscordError):
    """Discord could not be reached, or said it is overloaded (code 130000)."""

    code = "upstream_unavailable"
    default_message = "Discord is unavailable; retry later."


class DiscordTimeout(DiscordUnavailable):
    code = "upstream_timeout"
    default_message = "Discord did not answer in time."


class CredentialsUnavailable(InviteProxyError):
    """The bot token could not be read (Secrets Manager failed or the secret is empty)."""

    code = "credentials_unavailable"
    default_message = "The proxy cannot read its Discord credentials."


class BudgetExhausted(InviteProxyError):
    """The fleet has used its configured share of Discord lookups for this window."""

    code = "lookup_budget_exhausted"
    default_message = "The proxy has used its Discord lookup budget for now; retry later."


class LookupInProgress(InviteProxyError):
    """Another instance is fetching this invite and did not finish while we waited."""

    code = "lookup_in_progress"
    default_message = "This invite is being fetched from Discord; retry in a moment."


class LookupRecentlyFailed(InviteProxyError):
    """Another instance's fetch of this invite failed moments ago; asking again now won't help."""

    code = "lookup_recently_failed"
    default_message = "Fetching this invite from Discord failed a moment ago; retry later."


class CacheEvictionFailed(InviteProxyError):
    """Discord answered, but cached copies of the invite may survive: the caller should retry."""

    code = "cache_eviction_failed"
    default_message = (
        "Discord handled the deletion, but the proxy could not clear its cached copies; "
        "retry the DELETE to clear them."
    )


RETRYABLE_ERRORS: tuple[type[InviteProxyError], ...] = (
    BudgetExhausted,
    LookupInProgress,
    LookupRecentlyFailed,
    DiscordRateLimited,
    DiscordBlocked,
    DiscordServerError,
    DiscordUnavailable,
    CredentialsUnavailable,
    CacheEvictionFailed,
)
"""Failures that are about now, not about the request: trying again later can succeed."""


class NotificationFailed(InviteProxyError):
    """A report could not be posted to the Discord webhook (reported, never fatal)."""

    code = "notification_failed"
    default_message = "The webhook notification failed."


class RuleRunFailed(InviteProxyError):
    """A rule run stopped on an error; the invocation fails, so the scheduler retries it."""

    code = "rule_run_failed"
    default_message = "The revocation rule run stopped early; it will be retried."
