"""The deadline value, and the costs the reserves are made of."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest

from invite_proxy.domain import costs
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.edges.settings import RevokerSettings
from tests.unit.fakes import FakeClock


def test_an_invocations_deadline_keeps_its_answer_reserve() -> None:
    clock = FakeClock()
    deadline = Deadline.from_remaining_ms(10_000, clock=clock)
    assert deadline.at == clock.now + 10 - costs.ANSWER_RESERVE_SECONDS
    clock.advance(4.0)
    assert deadline.left() == pytest.approx(6 - costs.ANSWER_RESERVE_SECONDS)


def test_a_deadline_never_changes_each_narrowing_is_a_new_value() -> None:
    clock = FakeClock()
    deadline = Deadline(clock.now + 10, clock)
    earlier = deadline.reserve(3.0)
    sooner = deadline.within(2.0)
    assert (earlier.at, sooner.at) == (clock.now + 7, clock.now + 2)
    assert deadline.at == clock.now + 10
    assert deadline.within(60).at == deadline.at  # never later than it was
    with pytest.raises(dataclasses.FrozenInstanceError):
        deadline.at = 0.0  # type: ignore[misc]


def test_fits_says_whether_work_started_now_ends_in_time() -> None:
    clock = FakeClock()
    deadline = Deadline(clock.now + 5, clock)
    assert deadline.fits(5.0)
    assert not deadline.fits(5.01)
    clock.advance(6)
    assert deadline.left() < 0
    assert not deadline.fits(0)


def test_no_deadline_is_forever() -> None:
    assert math.isinf(NO_DEADLINE.left())
    assert NO_DEADLINE.fits(1e9)
    assert math.isinf(NO_DEADLINE.reserve(5).at)
    assert not math.isinf(NO_DEADLINE.within(5).at)


def test_the_step_reserve_the_docs_state_is_the_one_in_force() -> None:
    """docs/revocation-rules.md states the default; it comes from domain/costs.py."""
    reserve = RevokerSettings.from_env({"CACHE_TABLE_NAME": "unit-table"}).step_seconds
    assert reserve == costs.rule_step_seconds(1.5 + 4.0)
    page = Path(__file__).resolve().parents[2] / "docs" / "revocation-rules.md"
    stated = re.search(r"\*\*([0-9.]+) s\*\* by default", page.read_text())
    assert stated is not None
    assert float(stated.group(1)) == pytest.approx(reserve)
