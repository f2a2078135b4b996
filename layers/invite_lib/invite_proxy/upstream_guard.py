"""The fleet's manners towards Discord: however many instances run, one careful client.

Before every upstream lookup, the guard reads the fleet's blocks (a 429 seen by
any instance, a Cloudflare block, a token that just failed, an empty bucket),
takes one call from the per-second rate and one lookup from the 10-minute
budget. After every answer it records what Discord said. Blocks short enough
are waited out; longer ones refuse the call, so the caller serves stale or
answers 429/503 with Retry-After.

If the fleet state cannot be read (DynamoDB failing), the guard lets the call
through and says so: the per-instance behaviour is then still polite, and
refusing every lookup would turn a cache outage into a full outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from invite_proxy import observability as obs
from invite_proxy.errors import (
    BudgetExhausted,
    CacheUnavailable,
    DiscordBlocked,
    DiscordMissingPermissions,
    DiscordRateLimited,
    DiscordUnauthorized,
    InviteProxyError,
)
from invite_proxy.fleet_state import Block, window_end

INVITES_BUCKET = "bucket:invites"  # every GET /invites/{code} shares one bucket
# Scopes that stop a lookup: the whole bot, the whole IP, the token, the lookup bucket.
_LOOKUP_SCOPES = frozenset({"global", "cloudflare", "token", INVITES_BUCKET})
BAN_THRESHOLD = 10_000  # invalid answers per 10 minutes that get an IP banned


class FleetState(Protocol):
    def active_blocks(self, now: float) -> list[Block]: ...
    def block(self, scope: str, until: float, reason: str) -> None: ...
    def count_invalid(self, now: float) -> int: ...
    def take_budget(self, now: float, limit: int) -> bool: ...
    def take_second(self, now: float, limit: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    max_wait_seconds: float  # a block this short is waited out
    lookup_budget: int  # upstream lookups per 10 minutes, fleet-wide; 0 = no budget
    calls_per_second: int  # fleet-wide, under Discord's 50/s per bot
    token_lock_seconds: float  # after a 401, no call for this long
    cloudflare_block_seconds: float  # after a Cloudflare block, no call for at least this long
    invalid_warn_threshold: int  # warn when a window's invalid answers reach this


class UpstreamGuard:
    def __init__(
        self,
        state: FleetState,
        policy: GuardPolicy,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._state = state
        self._policy = policy
        self._clock = clock
        self._sleep = sleep

    # -- before a call -------------------------------------------------------------------
    def admit_lookup(self, deadline: float) -> None:
        """Let one lookup go to Discord now, or raise what the caller should answer."""
        now = self._clock()
        block = self._longest_block(now)
        if block is not None:
            now = self._wait_or_refuse(block, now, deadline)
        if not self._take(self._state.take_second, now, self._policy.calls_per_second):
            second_left = 1.0 - (now % 1.0)
            now = self._wait_or_refuse(Block("global", now + second_left, "rate"), now, deadline)
            if not self._take(self._state.take_second, now, self._policy.calls_per_second):
                raise DiscordRateLimited(retry_after=1.0, is_global=True, detail="fleet rate")
        budget = self._policy.lookup_budget
        if budget and not self._take(self._state.take_budget, now, budget):
            obs.count("BudgetExhausted")
            raise BudgetExhausted(
                retry_after=window_end(now) - now, detail=f"{budget} lookups per 10 minutes"
            )

    def _longest_block(self, now: float) -> Block | None:
        try:
            blocks = [b for b in self._state.active_blocks(now) if b.scope in _LOOKUP_SCOPES]
        except CacheUnavailable as exc:
            self._fleet_state_failed(exc)
            return None
        return max(blocks, key=lambda b: b.until, default=None)

    def _take(self, take: Callable[[float, int], bool], now: float, limit: int) -> bool:
        try:
            return take(now, limit)
        except CacheUnavailable as exc:
            self._fleet_state_failed(exc)
            return True

    def _wait_or_refuse(self, block: Block, now: float, deadline: float) -> float:
        wait = block.until - now
        if wait <= self._policy.max_wait_seconds and block.until < deadline:
            obs.count("UpstreamWait")
            self._sleep(wait)
            return self._clock()
        obs.count_by("UpstreamRefused", "Scope", block.scope.split(":")[0])
        raise _refusal(block, wait)

    # -- after a call --------------------------------------------------------------------
    def observe_success(self, headers: Mapping[str, str]) -> None:
        """An empty bucket is empty for the whole fleet until it resets."""
        if headers.get("X-RateLimit-Remaining") != "0":
            return
        try:
            reset_after = float(headers.get("X-RateLimit-Reset-After", "1"))
        except ValueError:
            reset_after = 1.0
        self._block(INVITES_BUCKET, self._clock() + reset_after, "bucket empty")

    def observe_error(self, exc: InviteProxyError) -> None:
        now = self._clock()
        if isinstance(exc, DiscordRateLimited):
            if exc.scope != "shared":  # shared-scope 429s do not count towards a ban
                self._count_invalid(now)
            scope = "global" if exc.is_global else INVITES_BUCKET
            self._block(scope, now + (exc.retry_after or 1.0), "429")
        elif isinstance(exc, DiscordBlocked):
            self._count_invalid(now)
            wait = max(exc.retry_after or 0.0, self._policy.cloudflare_block_seconds)
            self._block("cloudflare", now + wait, "cloudflare")
        elif isinstance(exc, DiscordUnauthorized):
            self._count_invalid(now)
            self._block("token", now + self._policy.token_lock_seconds, "401")
        elif isinstance(exc, DiscordMissingPermissions):
            self._count_invalid(now)

    def _block(self, scope: str, until: float, reason: str) -> None:
        try:
            self._state.block(scope, until, reason)
        except CacheUnavailable as exc:
            self._fleet_state_failed(exc)

    def _count_invalid(self, now: float) -> None:
        obs.count("InvalidResponse")
        try:
            in_window = self._state.count_invalid(now)
        except CacheUnavailable as exc:
            self._fleet_state_failed(exc)
            return
        if in_window >= self._policy.invalid_warn_threshold:
            obs.logger.warning(
                "invalid Discord responses approaching the ban threshold",
                extra={"invalid_in_window": in_window, "ban_threshold": BAN_THRESHOLD},
            )

    @staticmethod
    def _fleet_state_failed(exc: CacheUnavailable) -> None:
        obs.count("FleetStateError")
        obs.logger.warning("fleet state unavailable", extra={"detail": exc.detail})


def _refusal(block: Block, wait: float) -> InviteProxyError:
    detail = f"fleet block {block.scope} ({block.reason}) for {wait:.1f}s more"
    if block.scope == "cloudflare":
        return DiscordBlocked(retry_after=wait, detail=detail)
    if block.scope == "token":
        return DiscordUnauthorized(retry_after=wait, detail=detail)
    return DiscordRateLimited(retry_after=wait, is_global=block.scope == "global", detail=detail)
