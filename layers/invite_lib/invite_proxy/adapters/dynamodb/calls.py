"""How adapters call DynamoDB: a failure is TableUnavailable, a refused condition an answer,
and a table that just failed is not waited on again for a while (the circuit breaker).

Conditional writes are how the fleet agrees on anything, so "the condition said
no" is an expected result, returned as ``Refused`` (with the item that stood
there, when the call asked for it), never an error.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from invite_proxy import observability as obs
from invite_proxy.adapters import instance
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline, DeadlineReached, wait_at_most
from invite_proxy.domain.errors import TableSkipped, TableUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def dynamodb_client(timeout: float) -> DynamoDBClient:
    """The table's client: each call asks DynamoDB what it consumed, and each invocation
    reports the sum as its ``TableReadUnits`` and ``TableWriteUnits`` metrics (what the
    table bills, as DynamoDB itself counts it: docs/cost.md)."""
    from invite_proxy.adapters.aws_clients import client

    dynamodb: DynamoDBClient = client("dynamodb", timeout)
    events = dynamodb.meta.events
    # (An id each: botocore keeps one handler per id, whatever the event.)
    events.register("provide-client-params.dynamodb", _ask_consumed, unique_id=_CONSUMED + "ask")
    events.register("after-call.dynamodb", _report_consumed, unique_id=_CONSUMED + "report")
    return dynamodb


_CONSUMED = "invite-proxy-consumed-capacity-"
_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def _ask_consumed(params: dict[str, Any], model: Any, **_: Any) -> None:
    if model.name in _READS or model.name in _WRITES:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _report_consumed(parsed: dict[str, Any], model: Any, **_: Any) -> None:
    """DynamoDB's own count of what a call consumed, by kind (a refused write's error
    carries none: those units go unreported here, and are billed all the same)."""
    consumed = parsed.get("ConsumedCapacity")
    parts = consumed if isinstance(consumed, list) else [consumed] if consumed else []
    for part in parts:
        total = float(part.get("CapacityUnits", 0.0))
        reads = part.get("ReadCapacityUnits", total if model.name in _READS else 0.0)
        writes = part.get("WriteCapacityUnits", total if model.name in _WRITES else 0.0)
        obs.units("TableReadUnits", float(reads))
        obs.units("TableWriteUnits", float(writes))


@dataclass(frozen=True, slots=True)
class Refused:
    """A conditional write the condition said no to, or a transaction cancelled."""

    item: dict[str, Any] = field(default_factory=dict)  # with ReturnValuesOnConditionCheckFailure
    # A transaction's: one per item, in order ({"Code": "None"} where it had no objection;
    # "ConditionalCheckFailed", with "Item" when asked for; or "TransactionConflict").
    reasons: list[dict[str, Any]] = field(default_factory=list)

    def refused(self, index: int) -> bool:
        """Whether the item at ``index`` failed its condition (not met another transaction)."""
        return self.reasons[index].get("Code") == "ConditionalCheckFailed"

    def item_at(self, index: int) -> dict[str, Any]:
        return dict(self.reasons[index].get("Item") or {})


def pause() -> None:
    """A few milliseconds, jittered, before trying again a transaction that met another
    on one of its items (DynamoDB cancels either for the conflict)."""
    time.sleep(random.uniform(0.002, 0.02))  # noqa: S311 (spreading, not secrecy)


DEFAULT_OPEN_SECONDS = 5.0  # TABLE_CIRCUIT_SECONDS's default


class CircuitBreaker:
    """Stops waiting on a failing table for a while, so each request does not pay again.

    Closed, calls go through. A failure opens it: for ``open_seconds`` every call
    fails at once, without a request. Then it is half-open: the next call tries the
    table (an execution environment makes one call at a time), and closes it if it
    works or opens it again if not. Opening and
    closing each say so once, with a metric and one log line. One breaker serves
    every adapter of an execution environment: the table fails for all of them.
    """

    def __init__(self, open_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._open_seconds = open_seconds
        self._clock = clock
        self._open_until: float | None = None  # None: closed
        self._lock = threading.Lock()  # a rule run calls from several threads

    def before(self, what: str) -> None:
        if self._open_until is not None and self._clock() < self._open_until:
            raise TableSkipped(detail=f"{what} skipped: the table's circuit is open")

    def succeeded(self) -> None:
        with self._lock:
            closing, self._open_until = self._open_until is not None, None
        if closing:
            obs.count("TableCircuitClosed")
            obs.logger.warning("table circuit closed: the table answers again")

    def failed(self, failure: TableUnavailable) -> None:
        with self._lock:
            opening = self._open_until is None
            self._open_until = self._clock() + self._open_seconds
        if opening:
            obs.count("TableCircuitOpen")
            obs.logger.warning(
                "table circuit open: calls skip the table for a while",
                extra={"open_seconds": self._open_seconds, "detail": failure.detail},
            )


class TableCalls:
    """How an adapter calls the table: through the breaker, within the caller's deadline,
    with failures typed. One serves every adapter of an execution environment."""

    def __init__(self, breaker: CircuitBreaker | None = None, call_seconds: float = 0.0) -> None:
        self._breaker = breaker or CircuitBreaker(DEFAULT_OPEN_SECONDS)
        self._call_seconds = call_seconds  # one call's worst case: domain/costs.py

    def _send[R](self, what: str, send: Callable[[], R], deadline: Deadline, essential: bool) -> R:
        """Make the call within the deadline.

        A call whose worst case fits in the time left is made as it is. One that might
        not fit is not started, and the request goes on without the table, as when the
        table fails: what comes after the table (Discord, for a lookup) keeps its time.
        An essential call (the eviction's: the table is the point of it) is made with
        whatever time there is, on a thread of its own, and waited for only until the
        deadline; a call given up on may still apply, which every write here allows.
        """
        left = deadline.left()
        if left <= 0 or (left < self._call_seconds and not essential):
            raise TableSkipped(detail=f"{what} skipped: no time left for the table")
        self._breaker.before(what)
        if left >= self._call_seconds:
            return send()
        try:
            return wait_at_most(left, send, name="table-call")
        except DeadlineReached:
            raise TableSkipped(detail=f"{what} did not finish before the deadline") from None

    def call[R](
        self,
        what: str,
        send: Callable[[], R],
        *,
        deadline: Deadline = NO_DEADLINE,
        essential: bool = False,
    ) -> R:
        """One DynamoDB call; any failure is TableUnavailable."""
        try:
            result = self._sent(what, send, deadline, essential)
        except (BotoCoreError, ClientError) as exc:
            raise self._failed(what, exc) from None
        self._breaker.succeeded()
        return result

    def write_if[R](
        self, what: str, send: Callable[[], R], *, deadline: Deadline = NO_DEADLINE
    ) -> R | Refused:
        """A conditional write (or transaction): its response, or Refused when a condition
        said no, which is an answer from a healthy table, not a failure."""
        try:
            result: R | Refused = self._sent(what, send, deadline, essential=False)
        except ClientError as exc:
            if not _refused(exc):
                raise self._failed(what, exc) from None
            response: Any = exc.response
            reasons = list(response.get("CancellationReasons", []))
            result = Refused(response.get("Item", {}), reasons)
        except BotoCoreError as exc:
            raise self._failed(what, exc) from None
        self._breaker.succeeded()
        return result

    def _sent[R](self, what: str, send: Callable[[], R], deadline: Deadline, essential: bool) -> R:
        """The call, tried again a few jittered milliseconds later when it met a transaction
        on its item (DynamoDB refuses a single-item write that does so, and botocore does
        not try it again): every lookup's claim writes the items the fleet shares."""
        for attempt in range(_CONFLICT_TRIES):
            try:
                return self._send(what, send, deadline, essential)
            except ClientError as exc:
                if _code(exc) != _CONFLICT or attempt == _CONFLICT_TRIES - 1:
                    raise
            pause()
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, what: str, exc: Exception) -> TableUnavailable:
        failure = TableUnavailable(detail=f"{what} failed: {exc}")
        if isinstance(exc, ClientError) and _code(exc) == _CONFLICT:
            return failure  # a busy item, not a failing table: the breaker stays closed
        self._breaker.failed(failure)
        return failure


class TableAdapter:
    """What every adapter of the table holds: the client, the table's name, how to call it.

    The instance's own id tells its leases and probes apart from other instances'.
    """

    def __init__(
        self, client: DynamoDBClient, table_name: str, calls: TableCalls | None = None
    ) -> None:
        self._client = client
        self._table = table_name
        self._calls = calls or TableCalls()
        self._own_id = secrets.token_hex(4)

    def _item(
        self,
        key: dict[str, Any],
        deadline: Deadline,
        *,
        consistent: bool = False,
        what: str = "GetItem",
    ) -> dict[str, Any] | None:
        """One GetItem: the item, or None."""
        response = self._calls.call(
            what,
            partial(
                self._client.get_item, TableName=self._table, Key=key, ConsistentRead=consistent
            ),
            deadline=deadline,
        )
        return response.get("Item")

    @property
    def _id(self) -> str:
        # The environment's part is read at each call: SnapStart restores many instances
        # from one snapshot, and gives each its own after the restore.
        return f"{instance.instance_id()}-{self._own_id}"


_CONFLICT = "TransactionConflictException"
_CONFLICT_TRIES = 3


def _code(exc: ClientError) -> str | None:
    return exc.response.get("Error", {}).get("Code")


def _refused(exc: ClientError) -> bool:
    error = exc.response.get("Error", {}).get("Code")
    if error == "ConditionalCheckFailedException":
        return True
    if error != "TransactionCanceledException":
        return False
    # A transaction is an answer when what cancelled it was its conditions, or another
    # transaction on one of its items at the same moment (the caller decides what then).
    reasons = exc.response.get("CancellationReasons") or []
    codes = {reason.get("Code") for reason in reasons} - {"None", None}
    return bool(codes) and codes <= {"ConditionalCheckFailed", "TransactionConflict"}
