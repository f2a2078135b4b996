"""Domain errors: what can go wrong, independent of how it reaches a caller.

Each error has a stable public ``code`` and a ``public_message`` that is safe to
show to anyone. Upstream internals (Discord's bodies, our token, stack traces)
stay in ``detail`` which is only ever logged.

Policy lives on the error classes, so the code that meets an error reads a
flag instead of keeping its own list of classes:

* ``retry_now``: another attempt right away may succeed (Discord's 5xx,
  timeouts, dropped connections). Never a 4xx.
* ``retry_later``: the failure is about now, not about the request; trying
  again later can succeed. A rule run stops on one, since it will recur. Such an
  error always has a ``retry_after`` (its class default when the raiser knows no
  better), so callers always get a Retry-After with it.
* ``serve_stale``: an older cached copy is a better answer than this error.
* ``fleet_block``: the guard answers it for the whole fleet, with its own
  Retry-After (a lease holder that meets one lets go at once): ``rate_limit``,
  ``cloudflare`` and ``token`` block the fleet after them, ``budget`` is the
  lookup budget; None for everything else.
* ``per_caller``: it is about who asked, not about the invite: a lookup holding the
  key's fetch lease lets go at once, so other callers of that key are not held by it.
* ``counts_as_invalid``: Discord counts it towards the 10,000-in-10-minutes ban.
* ``revocation_outcome``: what the audit log says when a revocation meets it
  (an ``Outcome``).

``http_responses`` alone maps these errors to HTTP statuses.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from invite_proxy.domain.rate_limits import RateLimit


class Outcome(StrEnum):
    """What came of one revocation attempt: the audit line's ``outcome``."""

    REVOKED = "revoked"
    ALREADY_GONE = "already_gone"  # Discord says 10006: nothing left to revoke
    FORBIDDEN = "forbidden"  # the bot lacks permission
    INVALID = "invalid_request"
    FAILED = "failed"


class InviteProxyError(Exception):
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal error."
    retry_now: ClassVar[bool] = False
    retry_later: ClassVar[bool] = False
    serve_stale: ClassVar[bool] = False
    fleet_block: ClassVar[str | None] = None
    per_caller: ClassVar[bool] = False
    revocation_outcome: ClassVar[Outcome] = Outcome.FAILED
    # Retry-After when nothing more precise is known: these failures are about now.
    default_retry_after: ClassVar[float | None] = None
    # What Discord's headers said, when the error is Discord's answer: a 404 still spends
    # the bucket, and a 429 says for how long and for whom.
    rate_limit: RateLimit | None = None
    status: int | None = None  # Discord's HTTP status, when Discord answered

    def __init__(
        self,
        public_message: str | None = None,
        *,
        detail: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.public_message = public_message or self.default_message
        self.detail = detail
        self.retry_after = retry_after if retry_after is not None else self.default_retry_after
        super().__init__(detail or self.public_message)

    @property
    def counts_as_invalid(self) -> bool:
        return False


class InvalidInput(InviteProxyError):
    code = "invalid_request"
    default_message = "The request is invalid."
    revocation_outcome = Outcome.INVALID


class UnknownInvite(InviteProxyError):
    code = "unknown_invite"
    default_message = "Unknown invite."
    revocation_outcome = Outcome.ALREADY_GONE

    def __init__(
        self,
        public_message: str | None = None,
        *,
        detail: str | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(public_message, detail=detail)
        self.status = 404
        self.rate_limit = rate_limit


class TableUnavailable(InviteProxyError):
    """The DynamoDB table failed: the cache, the leases or the fleet state.

    Lookups degrade around it; a revocation reports it.
    """

    code = "table_unavailable"
    default_message = "The proxy's table is unavailable."


class TableSkipped(TableUnavailable):
    """The call was not tried: the table's circuit is open, or no time is left for it."""


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
        rate_limit: RateLimit | None = None,
    ) -> None:
        super().__init__(public_message, detail=detail, retry_after=retry_after)
        self.status = status
        self.discord_code = discord_code
        self.rate_limit = rate_limit


class DiscordUnauthorized(DiscordError):
    code = "upstream_unauthorized"
    default_message = "Discord rejected the proxy's credentials."
    serve_stale = True
    fleet_block = "token"

    @property
    def counts_as_invalid(self) -> bool:
        return True


class DiscordMissingPermissions(DiscordError):
    """Discord's 50013 or 50001: the bot lacks a permission. Nothing the caller did."""

    code = "upstream_missing_permissions"
    default_message = "The bot lacks the permissions or access this needs."
    revocation_outcome = Outcome.FORBIDDEN

    @property
    def counts_as_invalid(self) -> bool:
        return True


class PermissionDenied(InviteProxyError):
    """An admin asked for what the bot may not do: the admin's 403, not Discord's fault."""

    code = "missing_permissions"
    default_message = (
        "The bot may not delete this invite: it needs Manage Channels on the invite's "
        "channel, or Manage Guild."
    )
    revocation_outcome = Outcome.FORBIDDEN


class AdminRequired(InviteProxyError):
    """An admin route was reached without an admin: its authorizer is missing. Fail closed."""

    code = "forbidden"
    default_message = "This route needs an admin token."


class DiscordRateLimited(DiscordError):
    code = "rate_limited"
    default_message = "Discord is rate limiting the proxy; retry later."
    retry_later = True
    serve_stale = True
    fleet_block = "rate_limit"

    def __init__(
        self,
        public_message: str | None = None,
        *,
        retry_after: float,
        rate_limit: RateLimit,
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
            rate_limit=rate_limit,
        )
        self.rate_limit: RateLimit = rate_limit

    @property
    def is_global(self) -> bool:
        return self.rate_limit.is_global

    @property
    def discord_scope(self) -> str | None:
        return self.rate_limit.discord_scope

    @property
    def counts_as_invalid(self) -> bool:
        return self.discord_scope != "shared"  # shared-scope 429s do not count towards a ban


class DiscordBlocked(DiscordError):
    """Cloudflare, not Discord, answered: a 403/429 that is not Discord's JSON."""

    code = "upstream_blocked"
    default_message = "Discord is refusing connections from the proxy; retry later."
    # Cloudflare rarely says for how long; the fleet then holds back for longer (the guard).
    default_retry_after = 60.0
    retry_later = True
    serve_stale = True
    fleet_block = "cloudflare"

    @property
    def counts_as_invalid(self) -> bool:
        return True


class DiscordServerError(DiscordError):
    """Discord answered 5xx: its problem, probably passing."""

    code = "upstream_error"
    default_message = "Discord returned a server error."
    default_retry_after = 1.0
    retry_now = True
    retry_later = True
    serve_stale = True


class DiscordUnavailable(DiscordError):
    """Discord could not be reached, or said it is overloaded (code 130000)."""

    code = "upstream_unavailable"
    default_message = "Discord is unavailable; retry later."
    default_retry_after = 2.0
    retry_now = True
    retry_later = True
    serve_stale = True


class DiscordTimeout(DiscordUnavailable):
    code = "upstream_timeout"
    default_message = "Discord did not answer in time."


class CredentialsUnavailable(InviteProxyError):
    """The bot token could not be read (Secrets Manager failed or the secret is empty)."""

    code = "credentials_unavailable"
    default_message = "The proxy cannot read its Discord credentials."
    default_retry_after = 5.0
    retry_later = True


class BudgetExhausted(InviteProxyError):
    """The fleet has used its Discord lookups for now: one comes back every few seconds."""

    code = "lookup_budget_exhausted"
    default_message = "The proxy has used its Discord lookup budget for now; retry later."
    default_retry_after = 60.0
    retry_later = True
    serve_stale = True
    fleet_block = "budget"


class CallerShareExhausted(InviteProxyError):
    """This caller has used its share of the lookup budget: others' lookups go on."""

    code = "lookup_share_exhausted"
    default_message = "You have made too many lookups of invites that are not cached; retry later."
    default_retry_after = 30.0
    retry_later = True
    serve_stale = True
    per_caller = True


class LookupInProgress(InviteProxyError):
    """Another instance is fetching this invite and did not finish while we waited."""

    code = "lookup_in_progress"
    default_message = "This invite is being fetched from Discord; retry in a moment."
    default_retry_after = 1.0
    retry_later = True
    serve_stale = True


class LookupRecentlyFailed(InviteProxyError):
    """Another instance's fetch of this invite failed moments ago; asking again now won't help."""

    code = "lookup_recently_failed"
    default_message = "Fetching this invite from Discord failed a moment ago; retry later."
    default_retry_after = 1.0
    retry_later = True
    serve_stale = True


class UnknownIcon(InviteProxyError):
    """Not the icon the invite's guild shows now (or the guild shows none)."""

    code = "unknown_icon"
    default_message = "This is not the icon of the invite's guild."


class IconUnavailable(InviteProxyError):
    """Discord's CDN did not give the icon (or gave what is not one): held a while."""

    code = "icon_unavailable"
    default_message = "The guild's icon could not be fetched from Discord; retry later."
    default_retry_after = 60.0
    retry_later = True


class CacheEvictionFailed(InviteProxyError):
    """Discord answered, but cached copies of the invite may survive: the caller should retry."""

    code = "cache_eviction_failed"
    default_message = (
        "Discord handled the deletion, but the proxy could not clear its cached copies; "
        "retry the DELETE to clear them."
    )
    default_retry_after = 1.0
    retry_later = True


class NotificationFailed(InviteProxyError):
    """A report could not be posted to the Discord webhook (reported, never fatal)."""

    code = "notification_failed"
    default_message = "The webhook notification failed."


class RuleRunFailed(InviteProxyError):
    """A rule run stopped on an error; the invocation fails, so the scheduler retries it."""

    code = "rule_run_failed"
    default_message = "The revocation rule run stopped early; it will be retried."
