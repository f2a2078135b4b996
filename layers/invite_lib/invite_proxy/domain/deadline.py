"""The one deadline of the invocation in progress, which every outside call takes its time from.

The handler begins it from the Lambda context's remaining time, less a reserve to
answer. The table skips calls that could not finish before it, Discord calls wait
no longer than what is left, and the services plan their waits and retries
within it: no request outlives its invocation. Outside an invocation (a test
calling a service directly) there is no deadline.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

# Kept back from Lambda's timeout: the half second every invocation must leave unused, and
# time to answer after the last call gave up (its error handled, logs and metrics written).
ANSWER_RESERVE_SECONDS = 0.5 + 0.3


class RequestDeadline:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._at = math.inf

    def begin(self, remaining_ms: int, reserve: float = ANSWER_RESERVE_SECONDS) -> None:
        """A new invocation with ``remaining_ms`` left before Lambda stops it."""
        self._at = self._clock() + remaining_ms / 1000 - reserve

    @property
    def at(self) -> float:
        return self._at

    def left(self) -> float:
        return self._at - self._clock()


class DeadlineReached(Exception):
    """The work did not finish in the time it was given; it may still finish on its own."""


def wait_at_most[R](seconds: float, work: Callable[[], R], *, name: str) -> R:
    """``work()``'s result, or DeadlineReached once ``seconds`` have passed without one.

    A client's own timeouts bound each connect and each read, not their sum, and a
    body that trickles in resets the read timeout: only a timer over the whole call
    holds it to a deadline. The work runs on a thread of its own and the caller
    stops waiting for it at the deadline. A thread that is left behind ends on its
    client's own timeouts; it is a fresh one per call, so no pool fills with hung calls.
    Without a deadline (``inf``), the work runs here.
    """
    if math.isinf(seconds):
        return work()
    if seconds <= 0:
        raise DeadlineReached
    future: Future[R] = Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:  # handed to the caller, whatever it is
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        raise DeadlineReached from None
