"""The invite lookup: cache first, Discord when the copy is missing or stale.

Knows nothing of API Gateway or HTTP; adapters come in through small protocols
so tests can plug in real local servers.
"""

from __future__ import annotations

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
    CacheUnavailable,
    DiscordBlocked,
    DiscordError,
    DiscordRateLimited,
    DiscordServerError,
    DiscordUnavailable,
    InviteProxyError,
    UnknownInvite,
)
from invite_proxy.models import Invite, InviteQuery

if TYPE_CHECKING:
    from invite_proxy.discord_client import DiscordResponse

# Failures after which an older copy is better than an error.
STALE_SERVABLE = (DiscordRateLimited, DiscordUnavailable, DiscordBlocked, DiscordServerError)


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._discord = discord
        self._policy = policy
        self._clock = clock

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
        obs.count("UpstreamCall")
        started = time.perf_counter()
        try:
            response = self._discord.get_invite(query.code, query.upstream_params())
        except UnknownInvite as exc:
            self._upstream_done(started, status=404)
            return unknown_entry(query.code, query.variant, exc.detail or "", now, self._policy)
        except InviteProxyError as exc:
            self._upstream_done(started, status=getattr(exc, "status", None))
            obs.count_by("UpstreamError", "ErrorKind", exc.code)
            obs.logger.warning(
                "upstream error", extra={"error_code": exc.code, "detail": exc.detail}
            )
            raise
        self._upstream_done(started, status=response.status)
        try:
            invite = Invite.model_validate(response.payload)
        except ValidationError:
            obs.count_by("UpstreamError", "ErrorKind", DiscordError.code)
            raise DiscordError(status=response.status, detail="body is not an invite") from None
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
