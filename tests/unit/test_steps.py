"""The rule run's scheduler on its own: slow start, its parallel path, stops, and nothing left.

Steps run on real threads (that is the scheduler's job) but never sleep: they meet at
barriers and events, and time is the fake clock's.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from invite_proxy.domain.errors import DiscordUnavailable
from invite_proxy.services import steps
from invite_proxy.services.steps import GiveBack, run_steps
from tests.unit.fakes import FakeClock

WAIT = 5.0  # a bound on each thread wait, so a broken scheduler fails rather than hangs


class Recorder:
    """What the steps did: when each started, how many ran at once, and which are running."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.finished: list[str] = []
        self.running = 0
        self.most_at_once = 0
        self.at_start: dict[str, int] = {}  # steps finished when each one started

    def enter(self, item: str) -> None:
        with self.lock:
            self.started.append(item)
            self.at_start[item] = len(self.finished)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)

    def leave(self, item: str) -> None:
        with self.lock:
            self.running -= 1
            self.finished.append(item)


def test_a_run_starts_alone_then_lets_one_more_in_after_each_success() -> None:
    record = Recorder()
    # Once the first has ended well, two may run at once: b and c meet here, which they
    # can only do together. Then three: d, e and f meet likewise.
    pair, trio = threading.Barrier(2, timeout=WAIT), threading.Barrier(3, timeout=WAIT)

    def step(item: str) -> None:
        record.enter(item)
        if item in "bc":
            pair.wait()
        elif item in "def":
            trio.wait()
        record.leave(item)

    items = list("abcdefgh")
    outcome = run_steps(items, step, parallel=3, has_time=lambda: True)
    assert record.started[0] == "a"
    assert record.at_start["a"] == 0
    assert all(record.at_start[item] >= 1 for item in items[1:])  # after a ended well
    assert record.most_at_once == 3  # the parallel path ran, and never past its bound
    assert sorted(record.finished) == items
    assert (outcome.started, outcome.left, outcome.failure, outcome.out_of_time) == (
        8,
        0,
        None,
        False,
    )


def test_the_first_error_stops_new_steps_and_the_ones_in_flight_finish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = Recorder()
    failure = DiscordUnavailable(detail="down for every invite")
    both_in = threading.Barrier(2, timeout=WAIT)
    failed = threading.Event()  # the scheduler has heard of c's failure
    ended = steps._Steps._ended

    def heard(self: steps._Steps[str], **outcome: Any) -> None:
        ended(self, **outcome)
        if outcome.get("failure") is not None:
            failed.set()

    monkeypatch.setattr(steps._Steps, "_ended", heard)

    def step(item: str) -> None:
        record.enter(item)
        if item == "b":  # in flight alongside c when c fails, and ends after
            both_in.wait()
            assert failed.wait(WAIT)
        elif item == "c":
            both_in.wait()
            record.leave(item)
            raise failure
        record.leave(item)

    outcome = run_steps(list("abcdefg"), step, parallel=4, has_time=lambda: True)
    assert outcome.failure is failure
    assert record.running == 0  # nothing left running: b finished after c's failure
    assert "b" in record.finished
    assert set(record.started) == {"a", "b", "c"}  # nothing started after the failure
    assert outcome.left == 4


def test_a_run_out_of_time_starts_nothing_more_and_counts_the_rest_left() -> None:
    clock = FakeClock()
    ends = clock.now + 3.0

    def step(item: str) -> None:
        clock.advance(1.0)

    # One at a time: the fake clock is one timeline.
    outcome = run_steps(list("abcdef"), step, parallel=1, has_time=lambda: clock.now < ends)
    assert (outcome.started, outcome.left, outcome.out_of_time) == (3, 3, True)
    assert outcome.failure is None


def test_a_step_that_gives_its_item_back_counts_it_left() -> None:
    def step(item: str) -> None:
        if item == "b":
            raise GiveBack

    outcome = run_steps(list("abcd"), step, parallel=1, has_time=lambda: True)
    assert (outcome.started, outcome.given_back, outcome.left) == (2, 1, 3)
    assert outcome.out_of_time


def test_no_time_for_the_first_step_starts_none() -> None:
    started: list[str] = []
    outcome = run_steps(list("ab"), started.append, parallel=4, has_time=lambda: False)
    assert started == []
    assert (outcome.started, outcome.left, outcome.out_of_time) == (0, 2, True)


def test_a_bug_in_a_step_is_raised_once_the_others_have_ended() -> None:
    record = Recorder()
    both_in = threading.Barrier(2, timeout=WAIT)

    def step(item: str) -> None:
        record.enter(item)
        if item in "bc":
            both_in.wait()
        if item == "c":
            record.leave(item)
            raise KeyError("a bug, not Discord")
        record.leave(item)

    with pytest.raises(KeyError):
        run_steps(list("abcdef"), step, parallel=3, has_time=lambda: True)
    assert record.running == 0
