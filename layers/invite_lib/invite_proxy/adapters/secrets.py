"""Adapter: secret strings (bot token, admin token hashes, webhook URL), cached, never logged."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from invite_proxy.domain.deadline import Deadline, DeadlineReached, wait_at_most
from invite_proxy.domain.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Read within the caller's deadline: a cached value at once, else a read that ends by it.
SecretSource = Callable[[Deadline], str | None]


class _SecretsManagerString:
    """Read a Secrets Manager secret string, cached for ``cache_seconds``.

    The client is made on first use, once per execution environment: most lookups
    are cache hits and never need the bot token at all.

    boto3 cannot bound one call by a deadline, so a read runs on a thread of its
    own and the request waits for it only as long as its deadline allows. A read
    that hangs is left to finish (or time out) on its own, and the request answers.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        cache_seconds: int,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._clock = clock
        self._client: SecretsManagerClient | None = None
        self._value: str | None = None
        self._read_at = -math.inf

    def _setup(self) -> SecretsManagerClient:
        from invite_proxy.adapters.aws_clients import client

        secrets: SecretsManagerClient = client("secretsmanager", self._timeout)
        self._client = secrets
        return secrets

    def __call__(self, deadline: Deadline) -> str:
        if self._value is not None and self._clock() - self._read_at < self._cache_seconds:
            return self._value
        secret_id = self._secret_id
        left = deadline.left()
        if left <= 0:
            raise CredentialsUnavailable(detail=f"no time left to read secret {secret_id!r}")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            client = self._client or self._setup()  # no region, say: an error like the rest
            response = wait_at_most(
                left, partial(client.get_secret_value, SecretId=secret_id), name="secret-read"
            )
        except DeadlineReached:
            raise CredentialsUnavailable(
                detail=f"reading secret {secret_id!r} did not finish before the deadline"
            ) from None
        except (BotoCoreError, ClientError) as exc:
            # The message names the secret and the AWS error, never the value.
            raise CredentialsUnavailable(detail=f"reading secret {secret_id!r}: {exc}") from None
        value = response.get("SecretString")
        if not isinstance(value, str) or not value.strip():
            raise CredentialsUnavailable(detail=f"secret {secret_id!r} holds no string")
        self._value, self._read_at = value.strip(), self._clock()
        return self._value


def secrets_manager_string(secret_id: str, *, cache_seconds: int, timeout: float) -> SecretSource:
    return _SecretsManagerString(secret_id, cache_seconds=cache_seconds, timeout=timeout)


_NOT_IN_A_TOKEN = frozenset(" \t\r\n{}[]\"':,")


def bot_token(source: SecretSource) -> SecretSource:
    """The bot token, checked for its shape before Discord sees it.

    A secret that holds JSON (or anything with spaces or quotes) is a
    misconfiguration: sent on, it would earn a 401 for every call, and 401s count
    towards the ban. The error names the problem, never the value.
    """

    def read(deadline: Deadline) -> str | None:
        token = source(deadline)
        if token is not None and _NOT_IN_A_TOKEN & set(token):
            raise CredentialsUnavailable(
                detail="the bot token secret does not hold a raw token (JSON, or spaces?)"
            )
        return token

    return read


def static_secret(value: str | None) -> SecretSource:
    """A value given directly (the local run's variables), or none at all."""
    return lambda _deadline: value
