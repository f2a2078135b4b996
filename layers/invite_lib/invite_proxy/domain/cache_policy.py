"""How long a cached answer is fresh, how long it may live, and what an entry holds.

Pure arithmetic on epoch seconds: no I/O, so every rule here is unit-tested.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class EntryKind(StrEnum):
    INVITE = "invite"
    UNKNOWN = "unknown"  # negative entry: Discord said 10006 Unknown Invite


@dataclass(frozen=True, slots=True)
class CachePolicy:
    fresh_seconds: int
    max_age_seconds: int
    negative_seconds: int
    stale_if_error_seconds: int
    # While one instance refreshes a stale copy, the others serve it for at most this long.
    stale_while_revalidate_seconds: int = 0


@dataclass(frozen=True, slots=True)
class CacheEntry:
    code: str
    variant: str
    kind: EntryKind
    body: str  # Discord's response, byte for byte
    etag: str
    fetched_at: float
    fresh_until: float
    expires_at: int  # the DynamoDB TTL, epoch seconds: the entry never outlives this

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def is_fresh(self, now: float) -> bool:
        return now < self.fresh_until and not self.is_expired(now)

    def fresh_for(self, now: float) -> int:
        """Whole seconds of freshness left, for Cache-Control's max-age."""
        return max(0, math.floor(min(self.fresh_until, self.expires_at) - now))

    def can_serve_stale(self, now: float, policy: CachePolicy) -> bool:
        return (
            self.kind is EntryKind.INVITE
            and not self.is_expired(now)
            and now - self.fresh_until <= policy.stale_if_error_seconds
        )

    def can_serve_while_revalidating(self, now: float, policy: CachePolicy) -> bool:
        return (
            self.kind is EntryKind.INVITE
            and not self.is_expired(now)
            and now - self.fresh_until <= policy.stale_while_revalidate_seconds
        )


def etag_for(body: str) -> str:
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def invite_ttl(now: float, invite_expiry: datetime | None, policy: CachePolicy) -> int:
    """Epoch second at which a cached invite must be gone.

    The invite's own end of life (expires_at, or created_at + max_age) when it
    has one, never later than the configured maximum cache age.
    """
    cap = math.floor(now) + policy.max_age_seconds
    if invite_expiry is None:
        return cap
    return min(cap, math.floor(invite_expiry.timestamp()))


def _entry(
    kind: EntryKind, code: str, variant: str, body: str, now: float, fresh_until: float, ttl: int
) -> CacheEntry:
    return CacheEntry(
        code=code,
        variant=variant,
        kind=kind,
        body=body,
        etag=etag_for(body),
        fetched_at=now,
        fresh_until=fresh_until,
        expires_at=ttl,
    )


def invite_entry(
    code: str, variant: str, body: str, expiry: datetime | None, now: float, policy: CachePolicy
) -> CacheEntry:
    ttl = invite_ttl(now, expiry, policy)
    fresh_until = min(now + policy.fresh_seconds, ttl)
    return _entry(EntryKind.INVITE, code, variant, body, now, fresh_until, ttl)


def unknown_entry(
    code: str, variant: str, body: str, now: float, policy: CachePolicy
) -> CacheEntry:
    fresh_until = now + policy.negative_seconds
    return _entry(EntryKind.UNKNOWN, code, variant, body, now, fresh_until, math.ceil(fresh_until))


def unlisted_entry(code: str, variant: str, now: float, until: float) -> CacheEntry:
    """Guild mode's answer for a code no allowed guild lists: unknown until ``until``, when
    the lists may be read again, and never stored (the next read may list it)."""
    until = max(now, until)
    return _entry(EntryKind.UNKNOWN, code, variant, "", now, until, math.ceil(until))
