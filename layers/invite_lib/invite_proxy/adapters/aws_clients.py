"""How every AWS client here is configured (domain/costs.py has what a call with it can cost).

Fail fast: the table and the secrets sit on the request path, so a slow answer
is worse than an error the caller can work around.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from invite_proxy.domain.costs import AWS_ATTEMPTS

if TYPE_CHECKING:
    from botocore.config import Config
    from botocore.session import Session

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
        retries={"mode": "standard", "total_max_attempts": AWS_ATTEMPTS},
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
