"""Adapter: secret strings (bot token, admin token hashes, webhook URL), cached, never logged."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from invite_proxy.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

SecretSource = Callable[[], str | None]


class _SecretsManagerString:
    """Read a Secrets Manager secret string, cached for ``cache_seconds``.

    The client (and Powertools Parameters, which is costly to import) are set up
    on first use, once per execution environment: most lookups are cache hits
    and never need the bot token at all.
    """

    def __init__(self, secret_id: str, *, cache_seconds: int, timeout: float) -> None:
        self._secret_id = secret_id
        self._cache_seconds = cache_seconds
        self._timeout = timeout
        self._provider: SecretsProvider | None = None
        self._read_error: type[Exception] = Exception

    def _setup(self) -> SecretsProvider:
        import boto3
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        from invite_proxy.aws_clients import client_config

        client = boto3.client("secretsmanager", config=client_config(self._timeout))
        self._read_error = GetParameterError
        self._provider = SecretsProvider(boto3_client=client)
        return self._provider

    def __call__(self) -> str:
        provider = self._provider or self._setup()
        secret_id = self._secret_id
        try:
            value = provider.get(secret_id, max_age=self._cache_seconds)
        except self._read_error as exc:
            # The message names the secret and the AWS error, never the value.
            raise CredentialsUnavailable(detail=f"reading secret {secret_id!r}: {exc}") from None
        if not isinstance(value, str) or not value.strip():
            raise CredentialsUnavailable(detail=f"secret {secret_id!r} holds no string")
        return value.strip()


def secrets_manager_string(secret_id: str, *, cache_seconds: int, timeout: float) -> SecretSource:
    return _SecretsManagerString(secret_id, cache_seconds=cache_seconds, timeout=timeout)


def static_secret(value: str | None) -> SecretSource:
    """A value given directly (the local run's variables), or none at all."""
    return lambda: value
