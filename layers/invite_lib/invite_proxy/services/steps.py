"""Steps through a list a few at a time: slow start, stop on the first error, stop in time.

A rule run revokes invites this way. One at a time cannot keep up with a bucket
that refills faster than one revocation's table calls and DELETE take, so steps
overlap, up to ``parallel`` at once. But a run starts with one, and lets one
more in after each step that ends well: a Discord or table that fails for every
item is met by one request, as a run one at a time would meet it.

The first error stops new steps: those in flight finish, the rest are left, and
the error is the outcome's. A step starts only while ``has_time()`` says so; a
step that finds, once started, that it cannot finish raises ``GiveBack`` and its
item counts as left. Nothing is left running when ``run_steps`` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from invite_proxy.domain.errors import InviteProxyError


class GiveBack(Exception):
    """Raised by a step with too little time left to finish: its item is left."""


@dataclass(frozen=True, slots=True)
class StepsOutcome:
    total: int
    started: int
    given_back: int
    out_of_time: bool  # a step did not start, or gave its item back, for want of time
    failure: InviteProxyError | None  # the first error: it stopped the steps

    @property
    def left(self) -> int:
        """Items no step finished with: never started, or given back."""
        return self.total - self.started + self.given_back


class _Steps[T]:
    def __init__(
        self,
        items: Sequence[T],
        step: Callable[[T], None],
        parallel: int,
        has_time: Callable[[], bool],
    ) -> None:
        self._items, self._step, self._has_time = items, step, has_time
        self._parallel = max(1, parallel)
        self._turn = threading.Condition()  # guards every counter below
        self._started = self._given_back = self._in_flight = 0
        self._allowed = 1  # steps let in at once: one more after each that ends well
        self._out_of_time = False
        self._failure: InviteProxyError | None = None
        self._crash: BaseException | None = None  # a bug in a step: re-raised at the end

    def run(self) -> StepsOutcome:
        workers = min(self._parallel, len(self._items))
        if workers <= 1:
            self._work()
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="step") as pool:
                for worker in [pool.submit(self._work) for _ in range(workers)]:
                    worker.result()
        if self._crash is not None:
            raise self._crash
        return StepsOutcome(
            total=len(self._items),
            started=self._started,
            given_back=self._given_back,
            out_of_time=self._out_of_time,
            failure=self._failure,
        )

    def _stopping(self) -> bool:
        return self._out_of_time or self._failure is not None or self._crash is not None

    def _next(self) -> T | None:
        with self._turn:
            self._turn.wait_for(lambda: self._in_flight < self._allowed or self._stopping())
            if self._stopping() or self._started == len(self._items):
                return None
            if not self._has_time():
                self._out_of_time = True
                self._turn.notify_all()
                return None
            self._started += 1
            self._in_flight += 1
            return self._items[self._started - 1]

    def _work(self) -> None:
        while (item := self._next()) is not None:
            try:
                self._step(item)
            except GiveBack:
                self._ended(gave_back=True)
                return
            except InviteProxyError as exc:
                self._ended(failure=exc)
                return
            except BaseException as exc:
                self._ended(crash=exc)
                return
            self._ended()

    def _ended(
        self,
        *,
        gave_back: bool = False,
        failure: InviteProxyError | None = None,
        crash: BaseException | None = None,
    ) -> None:
        with self._turn:
            self._in_flight -= 1
            if gave_back:
                self._given_back += 1
                self._out_of_time = True
            elif failure is not None:
                self._failure = self._failure or failure
            elif crash is not None:
                self._crash = self._crash or crash
            else:
                self._allowed = min(self._parallel, self._allowed + 1)
            self._turn.notify_all()


def run_steps[T](
    items: Sequence[T],
    step: Callable[[T], None],
    *,
    parallel: int,
    has_time: Callable[[], bool],
) -> StepsOutcome:
    """Run ``step`` for each item, as the module says; an error other than the domain's
    (a bug) is raised once every step in flight has ended."""
    return _Steps(items, step, parallel, has_time).run()
