"""Adapter: state the whole fleet shares, in the cache table under its own keys.

Every Lambda instance has its own memory, so anything that must hold across
the fleet lives here (keys.py has the key formats), written with conditional
updates: blocks ("no upstream call before"), the invalid-answer count per 10-minute
window, the per-second rate, allowances that refill continuously (the lookup budget,
each caller's share of it), and each rate-limit bucket as Discord last described it
(limit, remaining, reset_at, discord_bucket).

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
import time
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import Refused, TableAdapter
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.fleet_state import (
    PROBE,
    SPENT,
    TURN_SKIP_SECONDS,
    Allowance,
    Block,
    BucketTake,
    turn_wait,
)
from invite_proxy.domain.rate_limits import WINDOW_SECONDS, window_end, window_of

if TYPE_CHECKING:
    from invite_proxy.domain.rate_limits import BucketState

# The bucket's conditions, in named parts (the values they compare are named alike:
# :now the caller's time, :prev the ticket before the caller's, :stale when a turn
# left open is given up).
WINDOW_OPEN = "reset_at > :now"
WINDOW_OVER = "(attribute_not_exists(reset_at) OR reset_at <= :now)"
REQUEST_LEFT = "remaining > :zero"
NOBODY_IN_LINE = "(attribute_not_exists(queued) OR queued = served)"
NEXT_IN_LINE = "served = :prev"  # every ticket before the caller's has had its turn
TURNS_LEFT_OPEN = ("served < :prev", "moved_at < :stale")  # those ahead have gone
WINDOW_LEFT_UNPROBED = "reset_at < :stale"  # and nobody took the window's probe either


def _all(*parts: str) -> str:
    return " AND ".join(parts)


def _its_turn(*also_given_up: str) -> str:
    """The caller's turn: it is next in line, or those ahead let their turns go by."""
    return f"({NEXT_IN_LINE} OR ({_all(*TURNS_LEFT_OPEN, *also_given_up)}))"


# The blocks' item: each target's end and why, as attributes of their own.
_UNTIL, _REASON = "until:", "reason:"

# An allowance: whole (or never used), or part spent with room for one more call.
ALLOWANCE_WHOLE = "(attribute_not_exists(full_at) OR full_at <= :now)"
ALLOWANCE_NEW_OR_ROOM = "attribute_not_exists(full_at) OR (full_at > :now AND full_at <= :last)"
_ALLOWANCE_TRIES = 3

# What each update does to the bucket.
SPEND_ONE = "SET remaining = remaining - :one"
TAKE_TURN = "SET remaining = remaining - :one, served = :ticket, moved_at = :now"
PROBE_WINDOW = (
    "SET remaining = :zero, reset_at = :until, probing = :me, moved_at = :now, #ttl = :ttl"
)


class DynamoDBFleetState(TableAdapter):
    def active_blocks(self, now: float, *, deadline: Deadline = NO_DEADLINE) -> list[Block]:
        """Every block still in force: one read, made before every upstream call."""
        item = self._item(keys.blocks_key(), deadline, consistent=True, what="reading fleet blocks")
        blocks = []
        for name, value in (item or {}).items():
            target = name.removeprefix(_UNTIL)
            if name.startswith(_UNTIL) and float(value["N"]) > now:
                reason = (item or {}).get(_REASON + target, {}).get("S", "")
                blocks.append(Block(target, float(value["N"]), reason))
        return blocks

    def block(
        self, target: str, until: float, reason: str, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        """Block calls to ``target`` until ``until``; a later block already in place is kept."""
        blocked = self._calls.write_if(
            "writing a fleet block",
            partial(
                self._client.update_item,
                TableName=self._table,
                Key=keys.blocks_key(),
                UpdateExpression="SET #until = :until, #reason = :reason",
                ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                ExpressionAttributeNames={"#until": _UNTIL + target, "#reason": _REASON + target},
                ExpressionAttributeValues=_values({":until": until, ":reason": reason[:200]}),
                ReturnValues="ALL_NEW",
            ),
            deadline=deadline,
        )
        if not isinstance(blocked, Refused):
            # (The wall clock: a block's until may be an hour away, and the tidy-up only
            # takes what ended a window ago, so a skewed clock costs nothing that matters.)
            self._tidy_blocks(blocked.get("Attributes", {}), min(until, time.time()), deadline)

    def _tidy_blocks(self, item: dict[str, Any], now: float, deadline: Deadline) -> None:
        """The blocks over for a window go (the item has no TTL: it holds them all)."""
        over = [
            name.removeprefix(_UNTIL)
            for name, value in item.items()
            if name.startswith(_UNTIL) and float(value["N"]) < now - WINDOW_SECONDS
        ]
        if not over:
            return
        names = {f"#u{n}": _UNTIL + target for n, target in enumerate(over)}
        names |= {f"#r{n}": _REASON + target for n, target in enumerate(over)}
        self._calls.write_if(  # refused: one of them was blocked again meanwhile
            "tidying fleet blocks",
            partial(
                self._client.update_item,
                TableName=self._table,
                Key=keys.blocks_key(),
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression=" AND ".join(f"#u{n} < :over" for n in range(len(over))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values({":over": now - WINDOW_SECONDS}),
            ),
            deadline=deadline,
        )

    def take_bucket(
        self,
        bucket: str,
        now: float,
        probe_seconds: float,
        ticket: int | None = None,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> BucketTake:
        """Spend one request from a bucket, or say when to try again and hand out a place
        in its line (``ticket``), which the caller shows when it asks again."""
        line = _Line(self, bucket, now, deadline)
        if ticket is None:
            spent = line.update(
                "taking from",
                SPEND_ONE,
                _all(WINDOW_OPEN, REQUEST_LEFT, NOBODY_IN_LINE),
                {":one": 1, ":now": now, ":zero": 0},
            )
            if not isinstance(spent, Refused):
                return _spent(spent)
            old = spent.item
            if _number(old, "reset_at") <= now and _number(old, "queued") == _number(old, "served"):
                # The window is over, or was never seen, and nobody waits: one probes.
                probe = line.probe(probe_seconds, NOBODY_IN_LINE, {})
                if not isinstance(probe, Refused):
                    return PROBE
                return BucketTake(granted=False, retry_at=now)  # another instance moved first
            return line.join()
        turn = _turn_values(ticket, now)
        spent = line.update(
            "taking a turn from",
            TAKE_TURN,
            _all(WINDOW_OPEN, REQUEST_LEFT, _its_turn()),
            {":one": 1, ":zero": 0, ":now": now, **turn},
        )
        if not isinstance(spent, Refused):
            return _spent(spent)
        old = spent.item
        if _number(old, "served") >= ticket:
            return BucketTake(granted=False, retry_at=now)  # its turn was given up: join again
        if _number(old, "reset_at") <= now:
            probe = line.probe(probe_seconds, _its_turn(WINDOW_LEFT_UNPROBED), turn)
            if not isinstance(probe, Refused):
                return PROBE
            old = probe.item
        return _wait(old, ticket, now)

    def end_probe(self, bucket: str, now: float, *, deadline: Deadline = NO_DEADLINE) -> None:
        """A probe came back without rate-limit headers: let the next call probe at once."""
        self._calls.write_if(  # refused: not our probe, or already answered
            f"ending the probe of {bucket}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=keys.key(keys.BUCKET, bucket),
                UpdateExpression="SET reset_at = :now REMOVE probing",
                ConditionExpression="probing = :me",
                ExpressionAttributeValues={":now": {"N": repr(now)}, ":me": {"S": self._id}},
            ),
            deadline=deadline,
        )

    def record_bucket(
        self, bucket: str, state: BucketState, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        """Keep what Discord said: a later window replaces the old, the same one only shrinks.

        Answers arrive out of order; within one window the lowest ``remaining``
        is the truest, since calls reserved but still in flight are not in it.
        A late answer from an earlier window changes nothing.
        """
        # Refused: an answer already seen said less is left, or it is of a later window.
        self._calls.write_if(
            f"recording {bucket}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=keys.key(keys.BUCKET, bucket),
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
            deadline=deadline,
        )

    def take_allowance(
        self, name: str, now: float, allowance: Allowance, *, deadline: Deadline = NO_DEADLINE
    ) -> float:
        """One call from a continuously refilling allowance (domain/fleet_state.py): one
        conditional write when it was never taken, is part spent or is spent; two when it
        is whole again after it was taken."""
        seen: float | None = None  # full_at as the table last had it
        for _ in range(_ALLOWANCE_TRIES):
            take = allowance_take(self._table, name, now, allowance, seen)
            if isinstance(take, float):
                return take
            taken = self._calls.write_if(
                f"taking from {name}",
                partial(self._client.update_item, **take),
                deadline=deadline,
            )
            if not isinstance(taken, Refused):
                return 0.0
            seen = full_at_of(taken.item, now)  # another caller moved it first
        return allowance.every  # much contended: one more call's time, then again

    def give_back_allowance(
        self, name: str, allowance: Allowance, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        """One call taken and not made: the allowance is whole again that much sooner."""
        self._calls.write_if(
            f"giving back to {name}",
            partial(
                self._client.update_item,
                TableName=self._table,
                Key=keys.allowance_key(name),
                UpdateExpression="SET full_at = full_at - :every",
                ConditionExpression="attribute_exists(full_at)",
                ExpressionAttributeValues=_values({":every": allowance.every}),
            ),
            deadline=deadline,
        )

    def take_second(self, now: float, limit: int, *, deadline: Deadline = NO_DEADLINE) -> bool:
        """Take one call from this second's share of the per-bot rate; False when spent."""
        response = self._calls.write_if(
            "counting in fleet#rate",
            partial(self._client.update_item, **second_take(self._table, now, limit)),
            deadline=deadline,
        )
        return not isinstance(response, Refused)

    def count_invalid(self, now: float, *, deadline: Deadline = NO_DEADLINE) -> int:
        """Count one invalid answer in this window; return the window's total so far."""
        window = keys.window_sort_key(window_of(now))
        count = _count(self._table, keys.INVALID, window, window_end(now))
        response = self._calls.call(
            f"counting in {keys.INVALID}",
            partial(self._client.update_item, ReturnValues="UPDATED_NEW", **count),
            deadline=deadline,
        )
        return int(response["Attributes"]["n"]["N"])


# What a lookup's claim (adapters/dynamodb/lease_store.py) takes from the fleet in the same
# transaction as its lease: each below is one item's part of it, as the methods above make
# it alone. The transaction takes them all or none.


def block_check(table: str, targets: tuple[str, ...], now: float) -> dict[str, Any]:
    """No block in force on any of ``targets`` (as ``active_blocks`` reads them)."""
    names = {f"#u{n}": _UNTIL + target for n, target in enumerate(targets)}
    return {
        "TableName": table,
        "Key": keys.blocks_key(),
        "ConditionExpression": " AND ".join(
            f"(attribute_not_exists({name}) OR {name} <= :now)" for name in names
        ),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": _values({":now": now}),
    }


def second_take(table: str, now: float, limit: int) -> dict[str, Any]:
    """One call from this second's share of the per-bot rate, refused when spent."""
    second = math.floor(now)
    update = _count(table, keys.RATE, keys.second_sort_key(second), second + 1.0)
    update["ConditionExpression"] = "attribute_not_exists(n) OR n < :limit"
    update["ExpressionAttributeValues"][":limit"] = {"N": str(limit)}
    return update


def allowance_take(
    table: str, name: str, now: float, allowance: Allowance, seen: float | None
) -> dict[str, Any] | float:
    """One call from an allowance whose ``full_at`` was last seen as ``seen`` (None: not
    seen): the update, or the seconds to wait when it is spent by then.

    An allowance never taken, or part spent, takes one update; one whole again after it
    was taken needs another (DynamoDB has no max()). The update for what was seen (not
    seen: the first kind, which also serves an allowance never taken) refuses itself if
    the allowance is not so now, with the item as it is, so the caller can try the other.
    """
    ttl = math.ceil(now + allowance.ahead) + WINDOW_SECONDS  # whole again by then at latest
    values: dict[str, float | str]
    if seen is not None and seen <= now:
        update, condition = "SET full_at = :after, #ttl = :ttl", ALLOWANCE_WHOLE
        values = {":now": now, ":after": now + allowance.every, ":ttl": ttl}
    else:
        if seen is not None:
            _, wait = allowance.take(seen, now)
            if wait > 0:
                return wait
        update = "SET full_at = if_not_exists(full_at, :now) + :every, #ttl = :ttl"
        condition = ALLOWANCE_NEW_OR_ROOM
        # (A microsecond's leeway, as Allowance.take has: the burst's last call is not lost
        # to a float's last digit, the table comparing decimals.)
        last = now + allowance.ahead - allowance.every + 1e-6
        values = {":now": now, ":every": allowance.every, ":last": last, ":ttl": ttl}
    return {
        "TableName": table,
        "Key": keys.allowance_key(name),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#ttl": keys.TTL_ATTRIBUTE},
        "ExpressionAttributeValues": _values(values),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def full_at_of(item: dict[str, Any], now: float) -> float:
    """An allowance's ``full_at`` as a refused take returned it (never taken: whole now)."""
    return _number(item, "full_at", now)


def _count(table: str, pk: str, sk: str, ends: float) -> dict[str, Any]:
    """Add one to a counter that goes when its window does."""
    return {
        "TableName": table,
        "Key": keys.key(pk, sk),
        "UpdateExpression": "ADD n :one SET #ttl = if_not_exists(#ttl, :ttl)",
        "ExpressionAttributeNames": {"#ttl": keys.TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":ttl": {"N": str(math.ceil(ends) + WINDOW_SECONDS)},
        },
    }


class _Line:
    """One caller's business with one bucket's item: its conditional updates, in named parts."""

    def __init__(
        self, state: DynamoDBFleetState, bucket: str, now: float, deadline: Deadline
    ) -> None:
        self._state, self._bucket, self._now, self._deadline = state, bucket, now, deadline
        self._key = keys.key(keys.BUCKET, bucket)

    def update(
        self,
        what: str,
        update: str,
        condition: str,
        values: dict[str, float | str],
        *,
        names: dict[str, str] | None = None,
    ) -> Any:
        """A conditional update of the bucket; Refused carries the item as it was."""
        state = self._state
        request: dict[str, Any] = {
            "TableName": state._table,
            "Key": self._key,
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": _values(values),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ReturnValues": "ALL_NEW",
        }
        if names:
            request["ExpressionAttributeNames"] = names
        return state._calls.write_if(
            f"{what} {self._bucket}",
            lambda: state._client.update_item(**request),
            deadline=self._deadline,
        )

    def probe(self, probe_seconds: float, condition: str, turn: dict[str, float | str]) -> Any:
        """Take the window's probe: remaining 0 until its answer, or its time runs out.
        With a ``turn`` (a ticket's values), the probe is that ticket's turn."""
        now = self._now
        values: dict[str, float | str] = {
            ":zero": 0,
            ":now": now,
            ":until": now + probe_seconds,
            ":me": self._state._id,
            ":ttl": math.ceil(now + probe_seconds) + WINDOW_SECONDS,
            **turn,
        }
        update = PROBE_WINDOW + (", served = :ticket" if turn else "")
        return self.update(
            "probing",
            update,
            _all(WINDOW_OVER, condition),
            values,
            names={"#ttl": keys.TTL_ATTRIBUTE},
        )

    def join(self) -> BucketTake:
        """A place at the end of the bucket's line, and when to ask again with it."""
        state, now = self._state, self._now
        response = state._calls.call(
            f"joining the line of {self._bucket}",
            lambda: state._client.update_item(
                TableName=state._table,
                Key=self._key,
                UpdateExpression="ADD queued :one SET served = if_not_exists(served, :zero), "
                "moved_at = if_not_exists(moved_at, :now), #ttl = if_not_exists(#ttl, :ttl)",
                ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues=_values(
                    {":one": 1, ":zero": 0, ":now": now, ":ttl": math.ceil(now) + WINDOW_SECONDS}
                ),
                ReturnValues="ALL_NEW",
            ),
            deadline=self._deadline,
        )
        item = response.get("Attributes", {})
        return _wait(item, int(_number(item, "queued")), now)


def _spent(response: dict[str, Any]) -> BucketTake:
    """A request taken, and the bucket as it left it (the update's ALL_NEW)."""
    item = response.get("Attributes", {})
    if "window" not in item or "remaining" not in item:
        return SPENT
    return replace(SPENT, window=_number(item, "window"), remaining=int(_number(item, "remaining")))


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
