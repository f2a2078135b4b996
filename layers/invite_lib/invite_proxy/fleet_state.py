"""Adapter: state the whole fleet shares, in the cache table under its own keys.

Every Lambda instance has its own memory, so anything that must hold across
the fleet lives here, written with conditional updates:

    pk = "fleet#blocked", sk = "<scope>"       blocked_until: no upstream call before it
    pk = "fleet#invalid", sk = "window#<n>"    n: 401/403/429 answers in 10-minute window n
    pk = "fleet#budget",  sk = "window#<n>"    n: upstream lookups taken in window n
    pk = "fleet#rate",    sk = "second#<t>"    n: upstream calls in second t (the 50/s limit)

Every item carries a TTL, so old windows and expired blocks clean themselves up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from invite_proxy.dynamodb_cache import TTL_ATTRIBUTE, condition_failed
from invite_proxy.errors import CacheUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WINDOW_SECONDS = 600  # Discord counts invalid requests per 10 minutes
_BLOCKED = "fleet#blocked"
_INVALID = "fleet#invalid"
_BUDGET = "fleet#budget"
_RATE = "fleet#rate"


@dataclass(frozen=True, slots=True)
class Block:
    scope: str  # "global", "bucket:<id>", "token" or "cloudflare"
    until: float
    reason: str


def window_of(now: float) -> int:
    return math.floor(now / WINDOW_SECONDS)


def window_end(now: float) -> float:
    return float((window_of(now) + 1) * WINDOW_SECONDS)


class DynamoDBFleetState:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def active_blocks(self, now: float) -> list[Block]:
        """Every block still in force: one Query, made before every upstream call."""
        try:
            response = self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": _BLOCKED}},
                ConsistentRead=True,
            )
        except (BotoCoreError, ClientError) as exc:
            raise CacheUnavailable(detail=f"reading fleet blocks failed: {exc}") from None
        blocks = []
        for item in response.get("Items", []):
            until = float(item["blocked_until"]["N"])
            if until > now:
                blocks.append(Block(item["sk"]["S"], until, item.get("reason", {}).get("S", "")))
        return blocks

    def block(self, scope: str, until: float, reason: str) -> None:
        """Block a scope until ``until``; a later block already in place is kept."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": _BLOCKED}, "sk": {"S": scope}},
                UpdateExpression="SET blocked_until = :until, reason = :reason, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(blocked_until) OR blocked_until < :until",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":until": {"N": repr(until)},
                    ":reason": {"S": reason[:200]},
                    ":ttl": {"N": str(math.ceil(until) + WINDOW_SECONDS)},
                },
            )
        except ClientError as exc:
            if condition_failed(exc):
                return
            raise CacheUnavailable(detail=f"writing a fleet block failed: {exc}") from None
        except BotoCoreError as exc:
            raise CacheUnavailable(detail=f"writing a fleet block failed: {exc}") from None

    def take_budget(self, now: float, limit: int) -> bool:
        """Take one lookup from this window's budget; False when it is spent."""
        return self._take(_BUDGET, f"window#{window_of(now)}", window_end(now), limit)

    def take_second(self, now: float, limit: int) -> bool:
        """Take one call from this second's share of the per-bot rate; False when spent."""
        second = math.floor(now)
        return self._take(_RATE, f"second#{second}", second + 1.0, limit)

    def _take(self, pk: str, sk: str, ends: float, limit: int) -> bool:
        return self._add(pk, sk, ends, below=limit) is not None

    def count_invalid(self, now: float) -> int:
        """Count one invalid answer in this window; return the window's total so far."""
        return self._add(_INVALID, f"window#{window_of(now)}", window_end(now)) or 0

    def _add(self, pk: str, sk: str, ends: float, *, below: int | None = None) -> int | None:
        """Add one to a counter; its new value, or None when it had reached ``below``."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
            "UpdateExpression": "ADD n :one SET #ttl = if_not_exists(#ttl, :ttl)",
            "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":ttl": {"N": str(math.ceil(ends) + WINDOW_SECONDS)},
            },
            "ReturnValues": "UPDATED_NEW",
        }
        if below is not None:
            kwargs["ConditionExpression"] = "attribute_not_exists(n) OR n < :limit"
            kwargs["ExpressionAttributeValues"][":limit"] = {"N": str(below)}
        try:
            response = self._client.update_item(**kwargs)
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise CacheUnavailable(detail=f"counting in {pk} failed: {exc}") from None
        except BotoCoreError as exc:
            raise CacheUnavailable(detail=f"counting in {pk} failed: {exc}") from None
        return int(response["Attributes"]["n"]["N"])
