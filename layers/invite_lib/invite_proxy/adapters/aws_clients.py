"""How every AWS client here is configured, and the longest one call with it can take.

Fail fast: the table and the secrets sit on the request path, so a slow answer
is worse than an error the caller can work around.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.config import Config
    from botocore.session import Session

ATTEMPTS = 2  # the first try and one retry (botocore's max_attempts would count retries only)
# Standard retry mode sleeps at most 1 s (times jitter) before the second attempt.
RETRY_BACKOFF_SECONDS = 1.0
# A call to a table that answers, but slowly: DynamoDB's own latency is a few milliseconds.
# What must follow a DELETE is planned at this pace; a slower table cuts it short.
SLOW_CALL_SECONDS = 0.25
# The AWS services the functions call. The layer's build keeps botocore's models for
# these alone (and CREDENTIAL_SERVICES): botocore lists every service it has on each
# client's creation, and 440 services' folders cost a cold start about 13 ms.
SERVICES = ("dynamodb", "secretsmanager")
# What botocore's credential providers may call, should a role or SSO ever supply them.
CREDENTIAL_SERVICES = ("sts", "sso", "sso-oidc", "signin")


def client_config(timeout: float) -> Config:
    from botocore.config import Config

    return Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "total_max_attempts": ATTEMPTS},
    )


_CREATING = threading.Lock()


@cache
def _session() -> Session:
    from botocore.session import get_session

    return get_session()


def client(service: str, timeout: float) -> Any:
    """A client from botocore itself: boto3 adds nothing a client needs, and importing it
    costs a cold start about 80 ms (it pulls in s3transfer). Region, credentials and
    AWS_ENDPOINT_URL_<SERVICE> come from the environment, as with boto3."""
    if service not in SERVICES:
        raise ValueError(f"{service} is not in aws_clients.SERVICES: the layer has no model for it")
    with _CREATING:  # a botocore session is not thread-safe; the clients it makes are
        return _session().create_client(service, config=client_config(timeout))


def worst_call_seconds(timeout: float) -> float:
    """One call's worst case: every attempt times out connecting and then reading."""
    return ATTEMPTS * 2 * timeout + (ATTEMPTS - 1) * RETRY_BACKOFF_SECONDS
