"""Adapter: where the bot token comes from. It is cached, and never logged."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from invite_proxy.errors import CredentialsUnavailable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

TokenSource = Callable[[], str | None]


def secrets_manager_token(secret_id: str, *, cache_seconds: int, timeout: float) -> TokenSource:
    """Read the raw token from a Secrets Manager secret string, cached for ``cache_seconds``.

    Only a cache miss needs the token, and most lookups are hits, so the
    Secrets Manager client (and Powertools Parameters) are created on the first
    miss, once per execution environment, not at import.
    """
    provider: SecretsProvider | None = None

    def token() -> str:
        nonlocal provider
        # Imported here, not at module top: only the miss path pays for them.
        import boto3
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
        from botocore.config import Config

        if provider is None:
            config = Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2}
            )
            provider = SecretsProvider(boto3_client=boto3.client("secretsmanager", config=config))
        try:
            value = provider.get(secret_id, max_age=cache_seconds)
        except GetParameterError as exc:
            # The message names the secret and the AWS error, never the value.
            raise CredentialsUnavailable(detail=f"reading secret {secret_id!r}: {exc}") from None
        if not isinstance(value, str) or not value.strip():
            raise CredentialsUnavailable(detail=f"secret {secret_id!r} holds no token string")
        return value.strip()

    return token


def static_token(value: str | None) -> TokenSource:
    """The local run's token (DISCORD_BOT_TOKEN), or none at all."""
    return lambda: value
