"""Fetch leases as the lookup sees them: held here, or held by another instance; and what
else a lookup's claim of one can answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from invite_proxy.domain.cache_policy import CacheEntry
    from invite_proxy.domain.guard import Admitted


@dataclass(frozen=True, slots=True)
class Lease:
    """Held by this instance: it fetches, then settles the lease."""

    code: str
    variant: str
    owner: str
    until: float
    # Taken with the call's admission (domain/guard.py): the guard takes only the bucket.
    admitted: Admitted | None = None


@dataclass(frozen=True, slots=True)
class HeldElsewhere:
    """Another instance holds the lease until ``until``."""

    until: float
    failed: str | None  # the error code it gave up with, if it did


# (The claim's other answers are named tuples: made at every cold start, and cheaper so.)
class AlreadyKnown(NamedTuple):
    """No lease needed: Discord said lately that the code does not exist, whatever the
    variant asked (the code's unknown marker, as fresh as ``entry`` says)."""

    entry: CacheEntry


class Withheld(NamedTuple):
    """No lease taken: the admission's allowance ``name`` is spent for ``wait`` seconds."""

    name: str
    wait: float


Claim = Lease | HeldElsewhere | AlreadyKnown | Withheld
