"""Adapter: secret strings (bot token, admin token hashes, webhook URL), cached, never logged."""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as ReadTimedOut
from typing import TYPE_CHECKING

from invite_proxy.deadline import RequestDeadline
from invite_proxy.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

SecretSource = Callable[[], str | None]


class _SecretsManagerString:
    """Read a Secrets Manager secret string, cached for ``cache_seconds``.

    The client (and Powertools Parameters, which is costly to import) are set up
    on first use, once per execution environment: most lookups are cache hits
    and never need the bot token at all.

    boto3 cannot bound one call by a deadline, so a read runs on a worker thread
    and the request waits for it only as long as its deadline allows. A read that
    hangs is left to finish (or time out) on its own, and the request answers.
    """

    def __init__(
        self, secret_id: str, *, cache_seconds: int, timeout: float, deadline: RequestDeadline
    ) -> None:
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._deadline = deadline
        self._provider: SecretsProvider | None = None
        self._read_error: type[Exception] = Exception
        self._reader: ThreadPoolExecutor | None = None

    def _setup(self) -> SecretsProvider:
        import boto3
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        from invite_proxy.aws_clients import client_config

        client = boto3.client("secretsmanager", config=client_config(self._timeout))
        self._read_error = GetParameterError
        self._provider = SecretsProvider(boto3_client=client)
        self._reader = ThreadPoolExecutor(max_workers=2, thread_name_prefix="secret-read")
        return self._provider

    def __call__(self) -> str:
        provider = self._provider or self._setup()
        assert self._reader is not None
        secret_id = self._secret_id
        left = self._deadline.left()
        if left <= 0:
            raise CredentialsUnavailable(detail=f"no time left to read secret {secret_id!r}")
        read = self._reader.submit(provider.get, secret_id, max_age=self._cache_seconds)
        try:
            value = read.result(timeout=None if math.isinf(left) else left)
        except ReadTimedOut:
            raise CredentialsUnavailable(
                detail=f"reading secret {secret_id!r} did not finish before the deadline"
            ) from None
        except self._read_error as exc:
            # The message names the secret and the AWS error, never the value.
            raise CredentialsUnavailable(detail=f"reading secret {secret_id!r}: {exc}") from None
        if not isinstance(value, str) or not value.strip():
            raise CredentialsUnavailable(detail=f"secret {secret_id!r} holds no string")
        return value.strip()


def secrets_manager_string(
    secret_id: str, *, cache_seconds: int, timeout: float, deadline: RequestDeadline
) -> SecretSource:
    return _SecretsManagerString(
        secret_id, cache_seconds=cache_seconds, timeout=timeout, deadline=deadline
    )


_NOT_IN_A_TOKEN = frozenset(" \t\r\n{}[]\"':,")


def bot_token(source: SecretSource) -> SecretSource:
    """The bot token, checked for its shape before Discord sees it.

    A secret that holds JSON (or anything with spaces or quotes) is a
    misconfiguration: sent on, it would earn a 401 for every call, and 401s count
    towards the ban. The error names the problem, never the value.
    """

    def read() -> str | None:
        token = source()
        if token is not None and _NOT_IN_A_TOKEN & set(token):
            raise CredentialsUnavailable(
                detail="the bot token secret does not hold a raw token (JSON, or spaces?)"
            )
        return token

    return read


def static_secret(value: str | None) -> SecretSource:
    """A value given directly (the local run's variables), or none at all."""
    return lambda: value
