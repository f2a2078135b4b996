"""The deadline: the moment an invocation's work must be over, as one immutable value.

The handler makes it once per invocation from the Lambda context's remaining time,
less a reserve to answer, and passes it down: the services plan their waits and
retries within it, the table skips calls that could not finish before it, and
Discord calls wait no longer than it. A part that must leave time for what follows
it passes on an earlier one (``reserve``); a part with a shorter budget of its own,
the earlier of the two (``within``). Outside an invocation (a test calling a
service, a script) there is none: ``NO_DEADLINE``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace

from invite_proxy.domain.costs import ANSWER_RESERVE_SECONDS


@dataclass(frozen=True, slots=True)
class Deadline:
    at: float  # on ``clock``'s scale (epoch seconds); inf: no deadline
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    @classmethod
    def from_remaining_ms(
        cls,
        remaining_ms: int,
        *,
        reserve: float = ANSWER_RESERVE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> Deadline:
        """An invocation's, from the time Lambda says is left, less ``reserve`` to answer."""
        return cls(clock() + remaining_ms / 1000 - reserve, clock)

    @classmethod
    def never(cls, clock: Callable[[], float] = time.time) -> Deadline:
        return cls(math.inf, clock)

    def left(self) -> float:
        """Seconds to go (negative once passed; inf without a deadline)."""
        return self.at - self.clock()

    def fits(self, seconds: float) -> bool:
        """Whether ``seconds`` of work started now ends by the deadline."""
        return self.left() >= seconds

    def reserve(self, seconds: float) -> Deadline:
        """An earlier deadline, ``seconds`` before this one: what must follow keeps them."""
        return replace(self, at=self.at - seconds)

    def within(self, seconds: float) -> Deadline:
        """The earlier of this deadline and ``seconds`` from now."""
        return replace(self, at=min(self.at, self.clock() + seconds))


NO_DEADLINE = Deadline(math.inf)


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
