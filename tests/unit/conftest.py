"""A world of in-memory adapters on a fake clock, assembled by the real composition root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from invite_proxy.domain.deadline import Deadline
from invite_proxy.edges.settings import ApiSettings, RevokerSettings
from invite_proxy.edges.wiring import build_api, build_rule_runner
from invite_proxy.services.lookup import InviteLookupService
from invite_proxy.services.revocation import InviteRevocationService
from invite_proxy.services.rule_run import Notifier, RuleRunner
from tests.unit.fakes import (
    FakeClock,
    FakeDiscord,
    InMemoryCache,
    InMemoryFleetState,
    InMemoryGuildMirror,
    InMemoryLeases,
    Table,
)


@dataclass
class World:
    """One table, one Discord, one clock; each ``api()`` is another Lambda instance."""

    clock: FakeClock = field(default_factory=FakeClock)
    table: Table = field(init=False)
    cache: InMemoryCache = field(init=False)
    fleet: InMemoryFleetState = field(init=False)
    discord: FakeDiscord = field(init=False)
    mirror: InMemoryGuildMirror = field(init=False)
    lease_records: dict[Any, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.table = Table(self.clock)
        self.cache = InMemoryCache(self.table)
        self.fleet = InMemoryFleetState(self.table)
        self.discord = FakeDiscord(self.clock)
        self.mirror = InMemoryGuildMirror(self.table, self.cache)

    def api(self, **env: Any) -> tuple[InviteLookupService, InviteRevocationService]:
        settings = ApiSettings.from_env(
            {"CACHE_TABLE_NAME": "unit-table", **{k: str(v) for k, v in env.items()}}
        )
        leases = InMemoryLeases(
            self.table, self.lease_records, cache=self.cache, fleet=self.fleet.memory
        )
        self.cache.leases = leases
        return build_api(
            settings,
            cache=self.cache,
            leases=leases,
            fleet=self.fleet.view(),
            client=self.discord,
            mirror=self.mirror,
            clock=self.clock,
            sleep=self.clock.sleep,
        )

    def deadline(self, seconds: float = float("inf")) -> Deadline:
        """An invocation's deadline, ``seconds`` from now on the world's clock."""
        return Deadline(self.clock.now + seconds, self.clock)

    def lookups(self, **env: Any) -> InviteLookupService:
        return self.api(**env)[0]

    def runner(self, notifier: Notifier | None = None, **env: Any) -> RuleRunner:
        # One revocation at a time: the fake clock is one timeline. The scheduler's parallel
        # path has its own tests (test_steps.py), and a real run's in tests/e2e/test_revoker.py.
        env = {"RULE_PARALLEL_REVOCATIONS": 1, **env}
        settings = RevokerSettings.from_env(
            {"CACHE_TABLE_NAME": "unit-table", **{k: str(v) for k, v in env.items()}}
        )
        return build_rule_runner(
            settings,
            cache=self.cache,
            fleet=self.fleet.view(),
            client=self.discord,
            notifier=notifier,
            mirror=self.mirror,
            clock=self.clock,
            sleep=self.clock.sleep,
        )


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture(autouse=True)
def no_wall_clock_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit layer runs on the fake clock: a real sleep anywhere in it is a bug."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"time.sleep({seconds}) in a unit test: use the fake clock")

    monkeypatch.setattr("time.sleep", refuse)
