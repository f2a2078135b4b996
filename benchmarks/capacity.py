"""What each DynamoDB call costs in request units, by DynamoDB's published rules.

moto answers ``ReturnConsumedCapacity`` with a constant, and not at all for UpdateItem
or TransactWriteItems, so its answers cannot be the measure here. The meter sees every
call the handlers make in this process (botocore's one road for API calls), reads the
items each touches before and after it (unmetered), and charges what DynamoDB's
developer guide says an on-demand table charges:

* an item's size is its attribute names' UTF-8 bytes plus its values' (a string's
  UTF-8 bytes, a number's about one byte per two digits plus one, 1 for a boolean or
  null, 3 plus the contents for a map or list);
* a read is charged per 4 KB of what it read, rounded up: half a read request unit
  eventually consistent, one strongly consistent; a GetItem that finds nothing is
  charged the least, and a Query the sum of the items it read, then rounded;
* a write is charged one write request unit per 1 KB of the larger of the item before
  and after, rounded up, one at the least; a write its condition refuses is charged too;
* a TransactWriteItems is charged two write request units per 1 KB of each item in it,
  condition checks included. One cancelled is charged as if applied: the most it can
  cost.

The deployed stack reads DynamoDB's own answers instead: each invocation's
``TableReadUnits`` and ``TableWriteUnits`` metrics (docs/cost.md).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.client import BaseClient

READ_UNIT, WRITE_UNIT = 4096, 1024
_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass
class Units:
    read: float = 0.0
    write: float = 0.0
    calls: int = 0


def value_size(value: dict[str, Any]) -> int:
    ((kind, held),) = value.items()
    match kind:
        case "S":
            return len(held.encode())
        case "N":
            digits = held.lstrip("-").replace(".", "").strip("0") or "0"
            return math.ceil(len(digits) / 2) + 1
        case "B":
            return len(held)
        case "BOOL" | "NULL":
            return 1
        case "M":
            return 3 + item_size(held)
        case "L":
            return 3 + sum(1 + value_size(v) for v in held)
        case "SS" | "NS" | "BS":
            return sum(value_size({kind[0]: v}) for v in held)
    raise ValueError(f"not a DynamoDB value: {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    return sum(len(name.encode()) + value_size(v) for name, v in (item or {}).items())


def _reads(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / READ_UNIT)) * (1.0 if consistent else 0.5)


def _writes(before: int, after: int) -> float:
    return float(max(1, math.ceil(max(before, after) / WRITE_UNIT)))


class Meter:
    """Request units of every DynamoDB call made while ``metering``, in ``units``."""

    def __init__(self) -> None:
        self.units = Units()
        self._lock = threading.Lock()
        self._inside = threading.local()  # the meter's own reads go unmetered

    @contextmanager
    def metering(self) -> Iterator[Meter]:
        original = getattr(BaseClient, "_make_api_call")  # noqa: B009 (private to botocore)
        meter = self

        def metered(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
            if getattr(meter._inside, "on", False) or client.meta.service_model.service_name != (
                "dynamodb"
            ):
                return original(client, operation, params)
            return meter._call(client, original, operation, params)

        setattr(BaseClient, "_make_api_call", metered)  # noqa: B010
        try:
            yield self
        finally:
            setattr(BaseClient, "_make_api_call", original)  # noqa: B010

    def taken(self) -> Units:
        """What was charged since the last time asked."""
        with self._lock:
            units, self.units = self.units, Units()
        return units

    def _call(
        self, client: BaseClient, original: Any, operation: str, params: dict[str, Any]
    ) -> Any:
        touched = self._touched(operation, params)
        before = {key: self._size(client, original, *key) for key in touched}
        try:
            response = original(client, operation, params)
        except Exception:
            response = None
            raise
        finally:
            after = {key: self._size(client, original, *key) for key in touched}
            self._charge(client, original, operation, params, response, before, after)
        return response

    def _charge(
        self,
        client: BaseClient,
        original: Any,
        operation: str,
        params: dict[str, Any],
        response: dict[str, Any] | None,
        before: dict[tuple[str, _Key], int],
        after: dict[tuple[str, _Key], int],
    ) -> None:
        read = write = 0.0
        if operation == "GetItem":
            item = (response or {}).get("Item")
            read = _reads(item_size(item), bool(params.get("ConsistentRead")))
        elif operation == "Query":
            full = self._query_sizes(client, original, params)
            read = _reads(full, bool(params.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            for table, asked in params["RequestItems"].items():
                for key in asked["Keys"]:
                    size = self._size(client, original, table, _frozen(key))
                    read += _reads(size, bool(asked.get("ConsistentRead")))
        elif operation in _WRITES or operation == "BatchWriteItem":
            write = sum(_writes(before[key], after[key]) for key in before)
        elif operation == "TransactWriteItems":
            write = sum(2 * _writes(before[key], after[key]) for key in before)
        else:
            return  # the control plane (DescribeTable, ...): not charged per request
        with self._lock:
            self.units.read += read
            self.units.write += write
            self.units.calls += 1

    def _touched(self, operation: str, params: dict[str, Any]) -> list[tuple[str, _Key]]:
        """(table, key) of every item a write touches."""
        if operation in _WRITES:
            key = params.get("Key") or _key_of(params["Item"])
            return [(params["TableName"], _frozen(key))]
        if operation == "BatchWriteItem":
            keys = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    put, delete = request.get("PutRequest"), request.get("DeleteRequest")
                    key = _key_of(put["Item"]) if put else delete["Key"]
                    keys.append((table, _frozen(key)))
            return keys
        if operation == "TransactWriteItems":
            keys = []
            for entry in params["TransactItems"]:
                ((_, action),) = entry.items()
                key = action.get("Key") or _key_of(action["Item"])
                keys.append((action["TableName"], _frozen(key)))
            return keys
        return []

    def _size(self, client: BaseClient, original: Any, table: str, key: _Key) -> int:
        """The item's size now (0 if there is none), read past the meter."""
        self._inside.on = True
        try:
            found = original(
                client,
                "GetItem",
                {"TableName": table, "Key": _thawed(key), "ConsistentRead": True},
            )
        finally:
            self._inside.on = False
        return item_size(found.get("Item"))

    def _query_sizes(self, client: BaseClient, original: Any, params: dict[str, Any]) -> int:
        """A Query is charged for the whole items it read, whatever it projected."""
        asked = {k: v for k, v in params.items() if k != "ProjectionExpression"}
        if "ExpressionAttributeNames" in asked:
            used = asked.get("KeyConditionExpression", "") + asked.get("FilterExpression", "")
            names = {k: v for k, v in asked["ExpressionAttributeNames"].items() if k in used}
            if names:
                asked["ExpressionAttributeNames"] = names
            else:
                del asked["ExpressionAttributeNames"]
        self._inside.on = True
        try:
            found = original(client, "Query", asked)
        finally:
            self._inside.on = False
        return sum(item_size(item) for item in found.get("Items", []))


def _key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


_Key = tuple[tuple[str, str, Any], ...]  # (name, type, value) of each key attribute


def _frozen(key: dict[str, Any]) -> _Key:
    return tuple(sorted((name, *next(iter(value.items()))) for name, value in key.items()))


def _thawed(key: _Key) -> dict[str, Any]:
    return {name: {kind: held} for name, kind, held in key}
