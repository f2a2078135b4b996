"""The invite lookup: cache first, Discord when the copy is missing or stale.

Knows nothing of API Gateway or HTTP; adapters come in through small protocols
so tests can plug in real local servers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from invite_proxy import observability as obs
from invite_proxy.cache_policy import (
    CacheEntry,
    CachePolicy,
    EntryKind,
    invite_entry,
    unknown_entry,
)
from invite_proxy.errors import (
    BudgetExhausted,
    CacheUnavailable,
    DiscordBlocked,
    DiscordError,
    DiscordRateLimited,
    DiscordServerError,
    DiscordUnauthorized,
    DiscordUnavailable,
    InviteProxyError,
    UnknownInvite,
)
from invite_proxy.models import Invite, InviteQuery, guild_of

if TYPE_CHECKING:
    from invite_proxy.discord_client import DiscordResponse
    from invite_proxy.upstream_guard import UpstreamGuard

# Failures after which an older copy is better than an error.
STALE_SERVABLE = (
    DiscordRateLimited,
    DiscordUnavailable,
    DiscordBlocked,
    DiscordServerError,
    DiscordUnauthorized,
    BudgetExhausted,
)
# Failures worth another try: Discord's 5xx, timeouts, resets. Never a 4xx.
RETRYABLE = (DiscordServerError, DiscordUnavailable)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int  # after the first attempt
    attempt_seconds: float  # the longest one attempt can take (connect + read timeouts)
    deadline_seconds: float  # a lookup's whole budget, inside the Lambda timeout
    base_delay: float = 0.1
    max_delay: float = 1.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: spreads the fleet's retries instead of synchronising them."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # noqa: S311


NO_RETRIES = RetryPolicy(retries=0, attempt_seconds=0.0, deadline_seconds=60.0)


class InviteCache(Protocol):
    def get(self, code: str, variant: str, now: float) -> CacheEntry | None: ...
    def put(self, entry: CacheEntry, *, fetch_started: float | None = None) -> bool: ...


class InviteSource(Protocol):
    def get_invite(self, code: str, params: Mapping[str, str]) -> DiscordResponse: ...


class CacheStatus(StrEnum):
    HIT = "HIT"
    MISS = "MISS"
    STALE = "STALE"


@dataclass(frozen=True, slots=True)
class LookupResult:
    entry: CacheEntry
    cache_status: CacheStatus
    now: float

    @property
    def found(self) -> bool:
        return self.entry.kind is EntryKind.INVITE

    @property
    def fresh_for(self) -> int:
        return 0 if self.cache_status is CacheStatus.STALE else self.entry.fresh_for(self.now)


class InviteLookupService:
    def __init__(
        self,
        *,
        cache: InviteCache,
        discord: InviteSource,
        policy: CachePolicy,
        guard: UpstreamGuard | None = None,
        retry: RetryPolicy = NO_RETRIES,
        allowed_guilds: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._cache = cache
        self._discord = discord
        self._policy = policy
        self._guard = guard
        self._retry = retry
        self._allowed_guilds = allowed_guilds
        self._clock = clock
        self._sleep = sleep

    def lookup(self, query: InviteQuery) -> LookupResult:
        now = self._clock()
        cached = self._read(query, now)
        if cached is not None and cached.is_fresh(now):
            return self._result(cached, CacheStatus.HIT, now)
        try:
            entry = self._fetch(query, now)
        except STALE_SERVABLE as exc:
            if cached is not None and cached.can_serve_stale(now, self._policy):
                obs.logger.warning("serving stale copy", extra={"reason": exc.code})
                return self._result(cached, CacheStatus.STALE, now)
            raise
        if not entry.is_expired(now):  # an invite that died in flight is served, not stored
            self._write(entry, fetch_started=now)
        return self._result(entry, CacheStatus.MISS, now)

    def _fetch(self, query: InviteQuery, now: float) -> CacheEntry:
        """Ask Discord, retrying 5xx, timeouts and resets with jittered backoff in time."""
        deadline = now + self._retry.deadline_seconds
        attempt = 0
        while True:
            try:
                return self._fetch_once(query, now, deadline)
            except RETRYABLE:
                attempt += 1
                delay = self._retry.backoff(attempt)
                finish_by = self._clock() + delay + self._retry.attempt_seconds
                if attempt > self._retry.retries or finish_by > deadline:
                    raise
                obs.count("UpstreamRetry")
                self._sleep(delay)

    def _fetch_once(self, query: InviteQuery, now: float, deadline: float) -> CacheEntry:
        if self._guard is not None:
            self._guard.admit_lookup(deadline)
        obs.count("UpstreamCall")
        started = time.perf_counter()
        try:
            response = self._discord.get_invite(query.code, query.upstream_params())
        except UnknownInvite as exc:
            self._upstream_done(started, status=404)
            return unknown_entry(query.code, query.variant, exc.detail or "", now, self._policy)
        except InviteProxyError as exc:
            self._upstream_done(started, status=getattr(exc, "status", None))
            if self._guard is not None:
                self._guard.observe_error(exc)
            obs.count_by("UpstreamError", "ErrorKind", exc.code)
            obs.logger.warning(
                "upstream error", extra={"error_code": exc.code, "detail": exc.detail}
            )
            raise
        self._upstream_done(started, status=response.status)
        if self._guard is not None:
            self._guard.observe_success(response.headers)
        try:
            invite = Invite.model_validate(response.payload)
        except ValidationError:
            obs.count_by("UpstreamError", "ErrorKind", DiscordError.code)
            raise DiscordError(status=response.status, detail="body is not an invite") from None
        allowed = self._allowed_guilds
        if allowed is not None and guild_of(response.payload) not in allowed:
            # Not ours to resolve: answered and cached exactly like an unknown invite.
            obs.count("GuildNotAllowed")
            return unknown_entry(query.code, query.variant, "guild not allowed", now, self._policy)
        return invite_entry(
            query.code, query.variant, response.body, invite.expiry(), now, self._policy
        )

    @staticmethod
    def _upstream_done(started: float, *, status: int | None) -> None:
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        obs.logger.append_keys(upstream_status=status, upstream_latency_ms=latency_ms)
        obs.milliseconds("UpstreamLatency", latency_ms)

    def _read(self, query: InviteQuery, now: float) -> CacheEntry | None:
        try:
            return self._cache.get(query.code, query.variant, now)
        except CacheUnavailable as exc:
            self._cache_failed(exc)
            return None

    def _write(self, entry: CacheEntry, *, fetch_started: float) -> None:
        if entry.kind is EntryKind.UNKNOWN and self._policy.negative_seconds == 0:
            return
        try:
            written = self._cache.put(entry, fetch_started=fetch_started)
        except CacheUnavailable as exc:
            self._cache_failed(exc)
            return
        if not written:
            # A DELETE revoked the code while this lookup was fetching it.
            obs.count("CacheWriteSkipped")
            obs.logger.info("not cached: revoked while fetching")

    @staticmethod
    def _cache_failed(exc: CacheUnavailable) -> None:
        # Lookups go on through Discord; operators see the metric and the log.
        obs.count("CacheError")
        obs.logger.warning("cache unavailable", extra={"detail": exc.detail})

    @staticmethod
    def _result(entry: CacheEntry, status: CacheStatus, now: float) -> LookupResult:
        obs.count(f"Cache{status.value.title()}")
        obs.logger.append_keys(cache=status.value)
        return LookupResult(entry, status, now)
