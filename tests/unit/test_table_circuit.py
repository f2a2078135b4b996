"""The table's circuit breaker: a failing table is not waited on again for a while."""

from __future__ import annotations

import logging
import threading

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from invite_proxy.adapters.dynamodb.calls import CircuitBreaker, Refused, TableCalls
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import TableSkipped, TableUnavailable
from tests.unit.fakes import FakeClock


class Table:
    """A table that answers, refuses a condition, or cannot be reached, as told."""

    def __init__(self) -> None:
        self.down = False
        self.requests = 0

    def request(self) -> str:
        self.requests += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        return "answer"

    def refuse(self) -> str:
        self.requests += 1
        error = {"Error": {"Code": "ConditionalCheckFailedException", "Message": "no"}}
        raise ClientError(error, "PutItem")  # type: ignore[arg-type]


def said(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith(message)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_failure_opens_the_circuit_and_calls_skip_the_table(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    table, calls = Table(), TableCalls(CircuitBreaker(5.0, clock=clock))
    table.down = True
    with pytest.raises(TableUnavailable):
        calls.call("GetItem", table.request)
    for _ in range(3):
        with pytest.raises(TableUnavailable, match="circuit is open"):
            calls.call("GetItem", table.request)
    assert table.requests == 1
    [opened] = said(caplog, "table circuit open")
    assert opened.levelno == logging.WARNING


def test_after_a_while_one_call_tries_again_and_closes_it(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    table, calls = Table(), TableCalls(CircuitBreaker(5.0, clock=clock))
    table.down = True
    with pytest.raises(TableUnavailable):
        calls.call("GetItem", table.request)
    clock.advance(5.0)
    with pytest.raises(TableUnavailable):  # the trial fails: open again, said only once
        calls.call("GetItem", table.request)
    clock.advance(4.9)
    with pytest.raises(TableUnavailable, match="circuit is open"):
        calls.call("GetItem", table.request)
    clock.advance(0.1)
    table.down = False
    assert calls.call("GetItem", table.request) == "answer"
    assert calls.call("GetItem", table.request) == "answer"
    assert table.requests == 4
    assert len(said(caplog, "table circuit open")) == 1
    assert len(said(caplog, "table circuit closed")) == 1


def test_a_refused_condition_is_an_answer_not_a_failure(clock: FakeClock) -> None:
    table, calls = Table(), TableCalls(CircuitBreaker(5.0, clock=clock))
    assert isinstance(calls.write_if("PutItem", table.refuse), Refused)
    assert calls.call("GetItem", table.request) == "answer"  # still closed


def test_no_circuit_seconds_means_every_call_tries_the_table(clock: FakeClock) -> None:
    table, calls = Table(), TableCalls(CircuitBreaker(0.0, clock=clock))
    table.down = True
    for _ in range(3):
        with pytest.raises(TableUnavailable):
            calls.call("GetItem", table.request)
    assert table.requests == 3


def test_a_call_that_might_not_finish_before_the_deadline_is_not_started(
    clock: FakeClock,
) -> None:
    table = Table()
    calls = TableCalls(CircuitBreaker(5.0, clock=clock), call_seconds=3.0)
    deadline = Deadline.from_remaining_ms(10_000, reserve=0.8, clock=clock)  # 9.2 s to go
    assert calls.call("GetItem", table.request, deadline=deadline) == "answer"
    clock.advance(6.3)  # 2.9 s to go: less than one call's worst case
    with pytest.raises(TableSkipped, match="no time left"):
        calls.call("GetItem", table.request, deadline=deadline)
    clock.advance(2.9)  # none at all: not even an essential call starts
    with pytest.raises(TableSkipped, match="no time left"):
        calls.call("DeleteItem", table.request, deadline=deadline, essential=True)
    assert table.requests == 1
    deadline = Deadline.from_remaining_ms(10_000, clock=clock)  # the next invocation's
    assert calls.call("GetItem", table.request, deadline=deadline) == "answer"


def test_an_essential_call_is_made_with_the_time_there_is_and_waited_for_until_the_deadline(
    clock: FakeClock,
) -> None:
    calls = TableCalls(CircuitBreaker(5.0, clock=clock), call_seconds=3.0)
    deadline = Deadline.from_remaining_ms(10_000, reserve=0.8, clock=clock)
    clock.advance(9.15)  # 0.05 s to go: less than one call's worst case
    answered = threading.Event()
    with pytest.raises(TableSkipped, match="did not finish before the deadline"):
        calls.call(
            "DeleteItem", lambda: answered.wait(5), deadline=deadline, essential=True
        )  # no answer
    answered.set()
    # A quick one, in the time left; and the cut-short call opened no circuit.
    assert calls.call("DeleteItem", Table().request, deadline=deadline, essential=True) == "answer"
