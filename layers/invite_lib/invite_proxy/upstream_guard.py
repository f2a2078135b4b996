"""The fleet's manners towards Discord: however many instances run, one careful client.

Before every upstream lookup, the guard reads the fleet's blocks (a 429 seen by
any instance, a Cloudflare block, a token that just failed), takes one call
from the per-second rate, one request from the invites bucket as Discord last
described it, and one lookup from the 10-minute budget. After every answer it
records what Discord said: the bucket's headers, and any 429, 401 or block. Blocks short enough
are waited out; longer ones refuse the call, so the caller serves stale or
answers 429/503 with Retry-After.

If the fleet state cannot be read (DynamoDB failing), the guard lets the call
through and says so: the per-instance behaviour is then still polite, and
refusing every lookup would turn a cache outage into a full outage.
"""

from __future__ import annotations

import math
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
from invite_proxy.fleet_state import Block, BucketState, BucketTake, window_end

INVITES_BUCKET = "bucket:invites"  # every GET /invites/{code} shares one bucket
# Scopes that stop every call, whatever its bucket: the whole bot, the whole IP, the token.
_FLEET_SCOPES = frozenset({"global", "cloudflare", "token"})
BAN_THRESHOLD = 10_000  # invalid answers per 10 minutes that get an IP banned


class FleetState(Protocol):
    def active_blocks(self, now: float) -> list[Block]: ...
    def block(self, scope: str, until: float, reason: str) -> None: ...
    def count_invalid(self, now: float) -> int: ...
    def take_budget(self, now: float, limit: int) -> bool: ...
    def take_second(self, now: float, limit: int) -> bool: ...
    def take_bucket(self, scope: str, now: float, probe_seconds: float) -> BucketTake: ...
    def record_bucket(self, scope: str, state: BucketState) -> None: ...
    def end_probe(self, scope: str, now: float) -> None: ...


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    max_wait_seconds: float  # a block this short is waited out
    lookup_budget: int  # upstream lookups per 10 minutes, fleet-wide; 0 = no budget
    calls_per_second: int  # fleet-wide, under Discord's 50/s per bot
    token_lock_seconds: float  # after a 401, no call for this long
    cloudflare_block_seconds: float  # after a Cloudflare block, no call for at least this long
    invalid_warn_threshold: int  # warn when a window's invalid answers reach this
    probe_seconds: float = 5.5  # the longest one call can take: a probe's bucket hold


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
        # Whether this instance's call in flight is its bucket's probe (one call at a time).
        self._probing = False

    # -- before a call -------------------------------------------------------------------
    def admit_lookup(self, deadline: float) -> None:
        """Let one public lookup go to Discord now, or raise what the caller should answer."""
        self.admit(INVITES_BUCKET, deadline, spend_budget=True)

    def admit(self, bucket: str, deadline: float = math.inf, *, spend_budget: bool = False) -> None:
        """Let one call in ``bucket`` go to Discord now, or raise what the caller should answer.

        The bucket comes last: a call refused before it holds no bucket request (or probe)
        that no answer would ever give back.
        """
        self._probing = False
        now = self._clock()
        block = self._longest_block(now, bucket)
        if block is not None:
            now = self._wait_or_refuse(block, now, deadline)
        if not self._take(self._state.take_second, now, self._policy.calls_per_second):
            second_left = 1.0 - (now % 1.0)
            now = self._wait_or_refuse(Block("global", now + second_left, "rate"), now, deadline)
            if not self._take(self._state.take_second, now, self._policy.calls_per_second):
                raise DiscordRateLimited(retry_after=1.0, is_global=True, detail="fleet rate")
        budget = self._policy.lookup_budget
        if spend_budget and budget and not self._take(self._state.take_budget, now, budget):
            obs.count("BudgetExhausted")
            raise BudgetExhausted(
                retry_after=window_end(now) - now, detail=f"{budget} lookups per 10 minutes"
            )
        self._take_bucket(bucket, now, deadline)

    def _take_bucket(self, bucket: str, now: float, deadline: float) -> None:
        """Spend one request from the bucket, waiting briefly if it is empty."""
        give_up_at = now + self._policy.max_wait_seconds
        while True:
            try:
                take = self._state.take_bucket(bucket, now, self._policy.probe_seconds)
            except CacheUnavailable as exc:
                self._fleet_state_failed(exc)
                return
            if take.granted:
                self._probing = take.probe
                return
            # A probe in flight is not a known-empty bucket: its answer is a round trip
            # away, so it is waited for within the deadline, not the small wait budget.
            max_wait = math.inf if take.awaiting_probe else give_up_at - now
            empty = Block(bucket, take.retry_at, "bucket empty")
            now = self._wait_or_refuse(empty, now, deadline, max_wait)

    def _longest_block(self, now: float, bucket: str) -> Block | None:
        try:
            blocks = [
                b
                for b in self._state.active_blocks(now)
                if b.scope in _FLEET_SCOPES or b.scope == bucket
            ]
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

    def _wait_or_refuse(
        self, block: Block, now: float, deadline: float, max_wait: float | None = None
    ) -> float:
        """Sleep until the block ends if that fits both waits; else raise the refusal."""
        wait = block.until - now
        limit = self._policy.max_wait_seconds if max_wait is None else max_wait
        if wait <= limit and block.until < deadline:
            obs.count("UpstreamWait")
            self._sleep(max(wait, 0.0))
            return self._clock()
        obs.count_by("UpstreamRefused", "Scope", block.scope.split(":")[0])
        raise _refusal(block, wait)

    # -- after a call --------------------------------------------------------------------
    def observe_headers(self, headers: Mapping[str, str], bucket: str = INVITES_BUCKET) -> None:
        """Keep what Discord's rate-limit headers say about the bucket, for the fleet."""
        now = self._clock()
        probing, self._probing = self._probing, False
        state = bucket_state(headers, now)
        try:
            if state is not None:
                self._state.record_bucket(bucket, state)
            elif probing:
                self._state.end_probe(bucket, now)
        except CacheUnavailable as exc:
            self._fleet_state_failed(exc)

    def observe_error(self, exc: InviteProxyError, bucket: str = INVITES_BUCKET) -> None:
        now = self._clock()
        # A 429's headers are kept too: the block below outlasts them.
        self.observe_headers(exc.rate_limit_headers, bucket)
        if isinstance(exc, DiscordRateLimited):
            if exc.scope != "shared":  # shared-scope 429s do not count towards a ban
                self._count_invalid(now)
            scope = "global" if exc.is_global else bucket
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


def bucket_state(headers: Mapping[str, str], now: float) -> BucketState | None:
    """The bucket as X-RateLimit-* describe it; None when an answer carries no such headers."""
    try:
        reset_at = now + float(headers["X-RateLimit-Reset-After"])
        return BucketState(
            limit=int(headers["X-RateLimit-Limit"]),
            remaining=int(headers["X-RateLimit-Remaining"]),
            reset_at=reset_at,
            # Discord's own reset time is the same in every answer of one window; our
            # receive time plus Reset-After is not, so it only stands in when Reset is missing.
            window=float(headers.get("X-RateLimit-Reset") or reset_at),
            discord_bucket=headers.get("X-RateLimit-Bucket", ""),
        )
    except (KeyError, ValueError):
        return None


def _refusal(block: Block, wait: float) -> InviteProxyError:
    detail = f"fleet block {block.scope} ({block.reason}) for {wait:.1f}s more"
    if block.scope == "cloudflare":
        return DiscordBlocked(retry_after=wait, detail=detail)
    if block.scope == "token":
        return DiscordUnauthorized(retry_after=wait, detail=detail)
    return DiscordRateLimited(retry_after=wait, is_global=block.scope == "global", detail=detail)
