"""Fetch leases as the lookup sees them: held here, or held by another instance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    """Held by this instance: it fetches, then settles the lease."""

    code: str
    variant: str
    owner: str
    until: float


@dataclass(frozen=True, slots=True)
class HeldElsewhere:
    """Another instance holds the lease until ``until``."""

    until: float
    failed: str | None  # the error code it gave up with, if it did
