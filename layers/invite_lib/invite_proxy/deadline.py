"""The one deadline of the invocation in progress, which every outside call takes its time from.

The handler begins it from the Lambda context's remaining time, less a reserve to
answer. The table skips calls that could not finish before it, Discord calls wait
no longer than what is left, and the services plan their waits and retries
within it: no request outlives its invocation. Outside an invocation (a test
calling a service directly) there is no deadline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

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
