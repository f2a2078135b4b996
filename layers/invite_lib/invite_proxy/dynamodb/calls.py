"""How adapters call DynamoDB: a failure is TableUnavailable, a refused condition an answer.

Conditional writes are how the fleet agrees on anything, so "the condition said
no" is an expected result, returned as ``Refused`` (with the item that stood
there, when the call asked for it), never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from invite_proxy.errors import TableUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def dynamodb_client(timeout: float) -> DynamoDBClient:
    import boto3

    from invite_proxy.aws_clients import client_config

    return boto3.client("dynamodb", config=client_config(timeout))


@dataclass(frozen=True, slots=True)
class Refused:
    """A conditional write the condition said no to."""

    item: dict[str, Any] = field(default_factory=dict)  # with ReturnValuesOnConditionCheckFailure


def call[R](what: str, request: Callable[[], R]) -> R:
    """One DynamoDB call; any failure is TableUnavailable naming ``what``."""
    try:
        return request()
    except (BotoCoreError, ClientError) as exc:
        raise TableUnavailable(detail=f"{what} failed: {exc}") from None


def write_if[R](what: str, request: Callable[[], R]) -> R | Refused:
    """A conditional write (or transaction): its response, or Refused when a condition said no."""
    try:
        return request()
    except ClientError as exc:
        if _refused(exc):
            return Refused(exc.response.get("Item", {}))  # type: ignore[arg-type]
        raise TableUnavailable(detail=f"{what} failed: {exc}") from None
    except BotoCoreError as exc:
        raise TableUnavailable(detail=f"{what} failed: {exc}") from None


def _refused(exc: ClientError) -> bool:
    error = exc.response.get("Error", {}).get("Code")
    if error == "ConditionalCheckFailedException":
        return True
    if error != "TransactionCanceledException":
        return False
    # A transaction is refused when its first item (the condition check) is.
    reasons = exc.response.get("CancellationReasons") or []
    return bool(reasons) and reasons[0].get("Code") == "ConditionalCheckFailed"
