"""What Discord says about its rate limits, parsed once from each answer.

Every answer (2xx, 404s and errors alike) carries ``X-RateLimit-*`` headers; a
429 adds ``Retry-After``, ``X-RateLimit-Scope`` and ``-Global``, and a body with
``retry_after`` and ``global``. The client parses them into one ``RateLimit``,
carried by the response or the error, and the guard turns it into the
``BucketState`` it keeps for the fleet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 600  # Discord counts invalid requests per 10 minutes; so does our budget


def window_of(now: float) -> int:
    return math.floor(now / WINDOW_SECONDS)


def window_end(now: float) -> float:
    return float((window_of(now) + 1) * WINDOW_SECONDS)


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket as the X-RateLimit-* headers described it, with its reset made absolute."""

    limit: int
    remaining: int
    reset_at: float  # our clock: when the bucket refills
    window: float  # names the window: Discord's X-RateLimit-Reset, equal in all its answers
    discord_bucket: str
    seen_at: float  # our clock: when the answer came


@dataclass(frozen=True, slots=True)
class RateLimit:
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None  # Discord's epoch time of the reset
    reset_after: float | None = None  # seconds from the answer
    bucket: str = ""
    retry_after: float | None = None  # a 429's body, else its Retry-After header
    discord_scope: str | None = None  # X-RateLimit-Scope: "user", "global" or "shared", on a 429
    is_global: bool = False

    @classmethod
    def parse(cls, headers: Mapping[str, str], body: Any = None) -> RateLimit:
        body = body if isinstance(body, dict) else {}
        retry_after = _float(body.get("retry_after"))
        if retry_after is None:
            retry_after = _float(headers.get("Retry-After"))
        return cls(
            limit=_int(headers.get("X-RateLimit-Limit")),
            remaining=_int(headers.get("X-RateLimit-Remaining")),
            reset=_float(headers.get("X-RateLimit-Reset")),
            reset_after=_float(headers.get("X-RateLimit-Reset-After")),
            bucket=headers.get("X-RateLimit-Bucket", ""),
            retry_after=retry_after,
            discord_scope=headers.get("X-RateLimit-Scope"),
            is_global=bool(body.get("global")) or headers.get("X-RateLimit-Global") == "true",
        )

    def bucket_state(self, now: float) -> BucketState | None:
        """The bucket as of ``now``; None when the answer described none."""
        if self.limit is None or self.remaining is None or self.reset_after is None:
            return None
        reset_at = now + self.reset_after
        return BucketState(
            limit=self.limit,
            remaining=self.remaining,
            reset_at=reset_at,
            # Discord's own reset time is the same in every answer of one window; our
            # receive time plus Reset-After is not, so it only stands in when Reset is missing.
            window=self.reset if self.reset is not None else reset_at,
            discord_bucket=self.bucket,
            seen_at=now,
        )


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
