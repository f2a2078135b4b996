"""How every AWS client here is configured, and the longest one call with it can take.

Fail fast: the table and the secrets sit on the request path, so a slow answer
is worse than an error the caller can work around.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.config import Config

ATTEMPTS = 2  # the first try and one retry (botocore's max_attempts would count retries only)
# Standard retry mode sleeps at most 1 s (times jitter) before the second attempt.
RETRY_BACKOFF_SECONDS = 1.0
# A call to a table that answers, but slowly: DynamoDB's own latency is a few milliseconds.
# What must follow a DELETE is planned at this pace; a slower table cuts it short.
SLOW_CALL_SECONDS = 0.25


def client_config(timeout: float) -> Config:
    from botocore.config import Config

    return Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
    )


def worst_call_seconds(timeout: float) -> float:
    """One call's worst case: every attempt times out connecting and then reading."""
    return ATTEMPTS * 2 * timeout + (ATTEMPTS - 1) * RETRY_BACKOFF_SECONDS
