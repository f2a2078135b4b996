"""Revoking one invite: delete it on Discord, evict every cached copy, write the audit line.

Both faces of revocation use this: the admin API's DELETE and the scheduled rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from invite_proxy import observability as obs
from invite_proxy.domain.costs import REVOCATION_FOLLOWUP_SECONDS
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import (
    CacheEvictionFailed,
    InvalidInput,
    InviteProxyError,
    Outcome,
    PermissionDenied,
    TableUnavailable,
)
from invite_proxy.domain.inputs import InviteQuery, reason_from_header
from invite_proxy.domain.payloads import guild_of

if TYPE_CHECKING:
    from invite_proxy.domain.payloads import DiscordResponse


class EvictingCache(Protocol):
    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = ...) -> list[str]: ...


class InviteDeleter(Protocol):
    def delete_invite(
        self,
        code: str,
        reason: str | None,
        *,
        deadline: Deadline,
        call_deadline: Deadline | None = None,
    ) -> DiscordResponse: ...


@dataclass(frozen=True, slots=True)
class Revocation:
    code: str
    guild_id: str | None
    body: str  # the deleted invite, exactly as Discord returned it


def _guild_of_bodies(bodies: list[str]) -> str | None:
    for body in bodies:
        try:
            guild_id = guild_of(json.loads(body))
        except ValueError:
            continue
        if guild_id:
            return guild_id
    return None


class InviteRevocationService:
    def __init__(
        self,
        *,
        cache: EvictingCache,
        discord: InviteDeleter,
        followup_seconds: float = REVOCATION_FOLLOWUP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._discord = discord
        # Kept back from the Discord call for what follows it (the guard's record of the
        # answer, then the eviction): whatever Discord answers, or not in time, the
        # cached copies must still go.
        self._followup_seconds = followup_seconds
        self._clock = clock

    def revoke_request(
        self, code: str, raw_reason: str | None, *, actor: str, deadline: Deadline | None = None
    ) -> Revocation:
        """An admin's DELETE: the code and X-Audit-Log-Reason as sent, validated here."""
        deadline = deadline or Deadline.never(self._clock)
        obs.count("RevokeRequest")
        try:
            code = InviteQuery.parse(code, None).code
            reason = reason_from_header(raw_reason)
        except InvalidInput as exc:
            audit(
                actor=actor,
                source="api",
                code=code[:64],
                guild_id=None,
                reason=(raw_reason or "")[:600] or None,
                outcome=exc.revocation_outcome,
                error_code=exc.code,
            )
            raise
        return self.revoke(code, reason, actor=actor, source="api", deadline=deadline)

    def revoke(
        self,
        code: str,
        reason: str | None,
        *,
        actor: str,
        source: str,
        deadline: Deadline | None = None,
    ) -> Revocation:
        """Delete the invite; whatever Discord says, no cached copy of it survives.

        The cache is evicted after Discord answers, and marked revoked at that
        moment: a lookup whose fetch began earlier may have seen the invite
        alive, and the mark stops it from caching what it saw. No wait for the
        fleet's guard lasts past ``deadline``.
        """
        deadline = deadline or Deadline.never(self._clock)

        try:
            # The call, its waits for the guard included, ends in time for the eviction.
            response = self._discord.delete_invite(
                code,
                reason,
                deadline=deadline,
                call_deadline=deadline.reserve(self._followup_seconds),
            )
        except InviteProxyError as exc:
            outcome = exc.revocation_outcome
            # A timeout or a 5xx may come after Discord deleted it: a copy left then is a risk.
            self._evict_and_audit(
                code,
                reason,
                actor=actor,
                source=source,
                outcome=outcome,
                error_code=exc.code,
                maybe_gone=exc.retry_now,
                deadline=deadline,
            )
            if outcome is Outcome.FORBIDDEN:
                # The admin asked for what the bot may not do: their 403, not Discord's fault.
                raise PermissionDenied(detail=exc.detail) from None
            raise
        guild_id = self._evict_and_audit(
            code,
            reason,
            actor=actor,
            source=source,
            outcome=Outcome.REVOKED,
            guild_id=guild_of(response.payload),
            deadline=deadline,
        )
        return Revocation(code=code, guild_id=guild_id, body=response.body)

    def record_gone(
        self,
        code: str,
        reason: str | None,
        *,
        actor: str,
        source: str,
        deadline: Deadline | None = None,
    ) -> None:
        """A code found already gone without a DELETE: evict it and audit it all the same."""
        deadline = deadline or Deadline.never(self._clock)
        self._evict_and_audit(
            code,
            reason,
            actor=actor,
            source=source,
            outcome=Outcome.ALREADY_GONE,
            deadline=deadline,
        )

    def _evict_and_audit(
        self,
        code: str,
        reason: str | None,
        *,
        actor: str,
        source: str,
        outcome: Outcome,
        guild_id: str | None = None,
        error_code: str | None = None,
        maybe_gone: bool = False,
        deadline: Deadline,
    ) -> str | None:
        """Evict every cached copy, write the audit line; return the guild it names.

        When the invite is gone on Discord but its copies could not be evicted,
        that is the caller's error to hear about: a retry clears them.
        """
        cached_guild, evicted = self._evict(code, deadline)
        guild_id = guild_id or cached_guild
        audit(
            actor=actor,
            source=source,
            code=code,
            guild_id=guild_id,
            reason=reason,
            outcome=outcome,
            error_code=error_code,
            cache_evicted=evicted,
        )
        gone = outcome in (Outcome.REVOKED, Outcome.ALREADY_GONE) or maybe_gone
        if not evicted and gone:
            raise CacheEvictionFailed(detail=f"{code}: {outcome.value}, eviction failed")
        return guild_id

    def _evict(self, code: str, deadline: Deadline) -> tuple[str | None, bool]:
        """(the guild named by a cached copy, whether eviction worked)."""
        try:
            bodies = self._cache.evict(code, revoked_at=self._clock(), deadline=deadline)
        except TableUnavailable as exc:
            obs.count("CacheEvictionError")
            obs.logger.error("cache eviction failed", extra={"code": code, "detail": exc.detail})
            return None, False
        return _guild_of_bodies(bodies), True


def audit(
    *,
    actor: str,
    source: str,
    code: str,
    guild_id: str | None,
    reason: str | None,
    outcome: Outcome,
    error_code: str | None = None,
    cache_evicted: bool | None = None,
) -> None:
    """One structured line per revocation attempt: who, what, why, and what came of it."""
    obs.logger.info(
        "invite revocation",
        extra={
            "audit": {
                "actor": actor,
                "source": source,
                "code": code,
                "guild_id": guild_id,
                "reason": reason,
                "outcome": outcome.value,
                "error_code": error_code,
                "cache_evicted": cache_evicted,
            }
        },
    )
    obs.count_by("Revocation", "Outcome", outcome.value)
