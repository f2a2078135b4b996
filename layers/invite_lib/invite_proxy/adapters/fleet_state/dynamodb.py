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
of that answer open the new window for everyone. Callers that cannot have a
request wait in the bucket's line (``queued`` tickets handed out, ``served``
of them had their turn, ``moved_at`` the last turn taken or window opened):
turns go in ticket order, and a turn left open too long is given up.

Every item carries a TTL, so old windows and expired blocks clean themselves up.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import Refused, TableAdapter
from invite_proxy.domain.guard import (
    PROBE,
    SPENT,
    TURN_SKIP_SECONDS,
    WINDOW_SECONDS,
    Block,
    BucketTake,
    turn_wait,
    window_end,
    window_of,
)

if TYPE_CHECKING:
    from invite_proxy.domain.rate_limits import BucketState


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

    def take_bucket(
        self, scope: str, now: float, probe_seconds: float, ticket: int | None = None
    ) -> BucketTake:
        """Spend one request from a bucket, or say when to try again and hand out a place
        in its line (``ticket``), which the caller shows when it asks again."""
        key = keys.key(keys.BUCKET, scope)
        if ticket is None:
            spent = self._update(
                f"taking from {scope}",
                key,
                "SET remaining = remaining - :one",
                f"reset_at > :now AND remaining > :zero AND {_NOBODY_IN_LINE}",
                {":now": now},
            )
            if not isinstance(spent, Refused):
                return SPENT
            old = spent.item
            if _number(old, "reset_at") <= now and _number(old, "queued") == _number(old, "served"):
                # The window is over, or was never seen, and nobody waits: one probes.
                probe = self._probe(scope, key, now, probe_seconds, _NOBODY_IN_LINE, None)
                if not isinstance(probe, Refused):
                    return PROBE
                return BucketTake(granted=False, retry_at=now)  # another instance moved first
            return self._join(scope, key, now)
        turn = "(served = :prev OR (served < :prev AND moved_at < :stale{extra}))"
        spent = self._update(
            f"taking a turn from {scope}",
            key,
            "SET remaining = remaining - :one, served = :ticket, moved_at = :now",
            f"reset_at > :now AND remaining > :zero AND {turn.format(extra='')}",
            {":now": now, **_turn_values(ticket, now)},
        )
        if not isinstance(spent, Refused):
            return SPENT
        old = spent.item
        if _number(old, "served") >= ticket:
            return BucketTake(granted=False, retry_at=now)  # its turn was given up: join again
        if _number(old, "reset_at") <= now:
            condition = turn.format(extra=" AND reset_at < :stale")
            probe = self._probe(scope, key, now, probe_seconds, condition, ticket)
            if not isinstance(probe, Refused):
                return PROBE
            old = probe.item
        return _wait(old, ticket, now)

    def _probe(
        self,
        scope: str,
        key: dict[str, Any],
        now: float,
        probe_seconds: float,
        condition: str,
        ticket: int | None,
    ) -> Any:
        """Take the window's probe: remaining 0 until its answer, or its time runs out."""
        update = (
            "SET remaining = :zero, reset_at = :until, probing = :me, moved_at = :now, #ttl = :ttl"
        )
        values: dict[str, float | str] = {
            ":now": now,
            ":until": now + probe_seconds,
            ":me": self._id,
            ":ttl": math.ceil(now + probe_seconds) + WINDOW_SECONDS,
        }
        if ticket is not None:
            update += ", served = :ticket"
            values |= _turn_values(ticket, now)
        return self._update(
            f"probing {scope}",
            key,
            update,
            f"(attribute_not_exists(reset_at) OR reset_at <= :now) AND {condition}",
            values,
        )

    def _join(self, scope: str, key: dict[str, Any], now: float) -> BucketTake:
        """A place at the end of the bucket's line, and when to ask again with it."""
        response = self._calls.call(
            f"joining the line of {scope}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression="ADD queued :one SET served = if_not_exists(served, :zero), "
                "moved_at = if_not_exists(moved_at, :now), #ttl = if_not_exists(#ttl, :ttl)",
                ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues=_values(
                    {":one": 1, ":zero": 0, ":now": now, ":ttl": math.ceil(now) + WINDOW_SECONDS}
                ),
                ReturnValues="ALL_NEW",
            ),
        )
        item = response.get("Attributes", {})
        return _wait(item, int(_number(item, "queued")), now)

    def _update(
        self,
        what: str,
        key: dict[str, Any],
        update: str,
        condition: str,
        values: dict[str, float | str],
    ) -> Any:
        """A conditional update of a bucket; Refused carries the item as it was."""
        expressions = f"{update} {condition}"
        # DynamoDB refuses a value or a name the expressions do not use.
        offered = {":one": 1, ":zero": 0, **values}
        request: dict[str, Any] = {
            "TableName": self._table,
            "Key": key,
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _values(
                {k: v for k, v in offered.items() if re.search(f"{k}\\b", expressions)}
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if "#ttl" in expressions:
            request["ExpressionAttributeNames"] = {"#ttl": keys.TTL_ATTRIBUTE}
        return self._calls.write_if(what, lambda: self._client.update_item(**request))

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
                "#window = :window, discord_bucket = :bucket, moved_at = :seen, #ttl = :ttl "
                "REMOVE probing",
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
                    ":seen": {"N": repr(state.seen_at)},
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


# While anyone is in a bucket's line, a newcomer joins it instead of taking a request.
_NOBODY_IN_LINE = "(attribute_not_exists(queued) OR queued = served)"


def _turn_values(ticket: int, now: float) -> dict[str, float | str]:
    """What a turn's condition compares: the ticket before, and when a turn went stale."""
    return {":ticket": ticket, ":prev": ticket - 1, ":stale": now - TURN_SKIP_SECONDS}


def _number(item: dict[str, Any], name: str, default: float = 0.0) -> float:
    value = item.get(name)
    return float(value["N"]) if value else default


def _values(values: dict[str, float | str]) -> dict[str, dict[str, str]]:
    """DynamoDB's typed values: numbers as N (repr keeps a float's every digit), text as S."""
    return {
        name: {"S": value} if isinstance(value, str) else {"N": repr(value)}
        for name, value in values.items()
    }


def _wait(item: dict[str, Any], ticket: int, now: float) -> BucketTake:
    """When the holder of ``ticket`` should ask again, by the bucket as ``item`` has it."""
    return turn_wait(
        ticket,
        served=int(_number(item, "served")),
        remaining=int(_number(item, "remaining")),
        limit=int(_number(item, "limit", 1)),
        reset_at=_number(item, "reset_at"),
        probing="probing" in item,
        now=now,
    )
