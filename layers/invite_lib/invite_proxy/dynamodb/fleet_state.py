"""Adapter: state the whole fleet shares, in the cache table under its own keys.

Every Lambda instance has its own memory, so anything that must hold across
the fleet lives here (keys.py has the key formats), written with conditional
updates: blocks ("no upstream call before"), the invalid-answer count and the
lookup budget per 10-minute window, the per-second rate, and each rate-limit
bucket as Discord last described it (limit, remaining, reset_at, discord_bucket).

A bucket's ``remaining`` is spent before each call (a conditional decrement),
so instances never send more than Discord said is left. When its window is
over, or was never seen, one instance takes the next call as a probe
(``probing``, remaining 0 until its answer or ``reset_at``) and the headers
of that answer open the new window for everyone.

Every item carries a TTL, so old windows and expired blocks clean themselves up.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from invite_proxy.dynamodb import keys
from invite_proxy.dynamodb.calls import Refused, TableAdapter
from invite_proxy.upstream_guard import (
    PROBE,
    PROBE_POLL_SECONDS,
    SPENT,
    WINDOW_SECONDS,
    Block,
    BucketTake,
    window_end,
    window_of,
)

if TYPE_CHECKING:
    from invite_proxy.rate_limits import BucketState


class DynamoDBFleetState(TableAdapter):
    def active_blocks(self, now: float) -> list[Block]:
        """Every block still in force: one Query, made before every upstream call."""
        response = self._calls.call(
            "reading fleet blocks",
            lambda: self._client.query(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": keys.BLOCKED}},
                ConsistentRead=True,
            ),
        )
        blocks = []
        for item in response.get("Items", []):
            until = float(item["blocked_until"]["N"])
            if until > now:
                blocks.append(Block(item["sk"]["S"], until, item.get("reason", {}).get("S", "")))
        return blocks

    def block(self, scope: str, until: float, reason: str) -> None:
        """Block a scope until ``until``; a later block already in place is kept."""
        self._calls.write_if(
            "writing a fleet block",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=keys.key(keys.BLOCKED, scope),
                UpdateExpression="SET blocked_until = :until, reason = :reason, #ttl = :ttl",
                ConditionExpression="attribute_not_exists(blocked_until) OR blocked_until < :until",
                ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":until": {"N": repr(until)},
                    ":reason": {"S": reason[:200]},
                    ":ttl": {"N": str(math.ceil(until) + WINDOW_SECONDS)},
                },
            ),
        )

    def take_bucket(self, scope: str, now: float, probe_seconds: float) -> BucketTake:
        """Spend one request from a bucket, or say when to try again."""
        key = keys.key(keys.BUCKET, scope)
        spent = self._calls.write_if(
            f"taking from {scope}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET remaining = remaining - :one",
                ConditionExpression="reset_at > :now AND remaining > :zero",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":zero": {"N": "0"},
                    ":now": {"N": repr(now)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
        )
        if not isinstance(spent, Refused):
            return SPENT
        old = spent.item
        reset_at = float(old.get("reset_at", {}).get("N", "0"))
        if reset_at > now and "probing" in old:
            # Its answer may come any moment.
            return BucketTake(
                granted=False,
                retry_at=min(reset_at, now + PROBE_POLL_SECONDS),
                awaiting_probe=True,
            )
        if reset_at > now:
            return BucketTake(granted=False, retry_at=reset_at)  # empty until Discord's reset
        # The window is over, or was never seen: one instance probes, the rest wait for it.
        probe = self._calls.write_if(
            f"probing {scope}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="SET remaining = :zero, reset_at = :until, probing = :me, "
                "#ttl = :ttl",
                ConditionExpression="attribute_not_exists(reset_at) OR reset_at <= :now",
                ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":until": {"N": repr(now + probe_seconds)},
                    ":me": {"S": self._id},
                    ":now": {"N": repr(now)},
                    ":ttl": {"N": str(math.ceil(now + probe_seconds) + WINDOW_SECONDS)},
                },
            ),
        )
        if isinstance(probe, Refused):
            return BucketTake(granted=False, retry_at=now)  # another instance moved first
        return PROBE

    def end_probe(self, scope: str, now: float) -> None:
        """A probe came back without rate-limit headers: let the next call probe at once."""
        self._calls.write_if(  # refused: not our probe, or already answered
            f"ending the probe of {scope}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=keys.key(keys.BUCKET, scope),
                UpdateExpression="SET reset_at = :now REMOVE probing",
                ConditionExpression="probing = :me",
                ExpressionAttributeValues={":now": {"N": repr(now)}, ":me": {"S": self._id}},
            ),
        )

    def record_bucket(self, scope: str, state: BucketState) -> None:
        """Keep what Discord said: a later window replaces the old, the same one only shrinks.

        Answers arrive out of order; within one window the lowest ``remaining``
        is the truest, since calls reserved but still in flight are not in it.
        A late answer from an earlier window changes nothing.
        """
        # Refused: an answer already seen said less is left, or it is of a later window.
        self._calls.write_if(
            f"recording {scope}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=keys.key(keys.BUCKET, scope),
                UpdateExpression="SET #limit = :limit, remaining = :remaining, reset_at = :reset, "
                "#window = :window, discord_bucket = :bucket, #ttl = :ttl REMOVE probing",
                ConditionExpression="attribute_not_exists(#window) OR #window < :window "
                "OR (#window = :window AND remaining > :remaining)",
                ExpressionAttributeNames={
                    "#limit": "limit",
                    "#window": "window",
                    "#ttl": keys.TTL_ATTRIBUTE,
                },
                ExpressionAttributeValues={
                    ":limit": {"N": str(state.limit)},
                    ":remaining": {"N": str(state.remaining)},
                    ":reset": {"N": repr(state.reset_at)},
                    ":window": {"N": repr(state.window)},
                    ":bucket": {"S": state.discord_bucket[:100]},
                    ":ttl": {"N": str(math.ceil(state.reset_at) + WINDOW_SECONDS)},
                },
            ),
        )

    def take_budget(self, now: float, limit: int) -> bool:
        """Take one lookup from this window's budget; False when it is spent."""
        return self._take(keys.BUDGET, keys.window_sort_key(window_of(now)), window_end(now), limit)

    def take_second(self, now: float, limit: int) -> bool:
        """Take one call from this second's share of the per-bot rate; False when spent."""
        second = math.floor(now)
        return self._take(keys.RATE, keys.second_sort_key(second), second + 1.0, limit)

    def _take(self, pk: str, sk: str, ends: float, limit: int) -> bool:
        return self._add(pk, sk, ends, below=limit) is not None

    def count_invalid(self, now: float) -> int:
        """Count one invalid answer in this window; return the window's total so far."""
        return self._add(keys.INVALID, keys.window_sort_key(window_of(now)), window_end(now)) or 0

    def _add(self, pk: str, sk: str, ends: float, *, below: int | None = None) -> int | None:
        """Add one to a counter; its new value, or None when it had reached ``below``."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": keys.key(pk, sk),
            "UpdateExpression": "ADD n :one SET #ttl = if_not_exists(#ttl, :ttl)",
            "ExpressionAttributeNames": {"#ttl": keys.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":ttl": {"N": str(math.ceil(ends) + WINDOW_SECONDS)},
            },
            "ReturnValues": "UPDATED_NEW",
        }
        if below is not None:
            kwargs["ConditionExpression"] = "attribute_not_exists(n) OR n < :limit"
            kwargs["ExpressionAttributeValues"][":limit"] = {"N": str(below)}
        response = self._calls.write_if(
            f"counting in {pk}", lambda: self._client.update_item(**kwargs)
        )
        if isinstance(response, Refused):
            return None
        return int(response["Attributes"]["n"]["N"])
