"""Rule runs over in-memory adapters: what is chosen, what is revoked, and when a run stops."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from invite_proxy.domain.cache_policy import CachePolicy, invite_entry
from invite_proxy.domain.costs import (
    RESERVE_VARIANTS,
    SECRET_READ_SECONDS,
)
from invite_proxy.domain.deadline import Deadline
from invite_proxy.domain.errors import DiscordMissingPermissions, RuleRunFailed
from invite_proxy.domain.rules import RevocationRule
from invite_proxy.edges.settings import RevokerSettings
from invite_proxy.services.rule_run import RuleRunner
from tests.unit.conftest import World
from tests.unit.fakes import FakeClock, LeaseRecord, rate_limited

GUILD = "1000"
POLICY = CachePolicy(
    fresh_seconds=60, max_age_seconds=86_400, negative_seconds=60, stale_if_error_seconds=3600
)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def rule(**fields: object) -> RevocationRule:
    return RevocationRule.parse({"name": "unit-rule", **fields})


def lambda_time(clock: FakeClock, timeout: float) -> Deadline:
    """The deadline the handler makes for an invocation that starts now with ``timeout``."""
    return Deadline.from_remaining_ms(int(timeout * 1000), clock=clock)


def test_a_sweep_revokes_what_matches_oldest_first_and_spares_the_rest(world: World) -> None:
    now = world.clock.now
    for n, age in enumerate([7200, 9000, 60]):
        world.discord.add_invite(f"inv-{n}", created_at=iso(now - age), max_age=0, uses=1)
    world.discord.add_invite("keep-me", created_at=iso(now - 9999), max_age=0)
    summary = world.runner().run(
        rule(guild_id=GUILD, match={"older_than_seconds": 3600}, exclude_codes=["keep-me"]),
        lambda_time(world.clock, 300),
    )
    assert world.discord.deleted == ["inv-1", "inv-0"]
    assert (summary.matched, summary.revoked, summary.excluded) == (2, 2, 1)


def test_the_vanity_code_is_never_touched(world: World) -> None:
    world.discord.add_invite("vanity", guild={"id": GUILD, "vanity_url_code": "vanity"})
    world.discord.add_invite("plain")
    world.discord.vanity[GUILD] = "other-vanity"
    world.discord.add_invite("other-vanity")
    summary = world.runner().run(
        rule(guild_id=GUILD, match={"older_than_seconds": 0}), lambda_time(world.clock, 300)
    )
    assert summary.vanity_skipped == 0  # no created_at: "older than" never matches a guess
    summary = world.runner().run(
        rule(codes=["vanity", "plain", "other-vanity"]), lambda_time(world.clock, 300)
    )
    assert world.discord.deleted == ["plain", "other-vanity"]
    assert summary.vanity_skipped == 1


def test_revoking_evicts_every_cached_copy(world: World) -> None:
    world.discord.add_invite("cached-1")
    for variant in ("counts=0#event=-", "counts=1#event=-"):
        world.cache.put(invite_entry("cached-1", variant, "{}", None, world.clock.now, POLICY))
    world.runner().run(rule(codes=["cached-1"]), lambda_time(world.clock, 300))
    assert world.cache.variants_of("cached-1") == []


def test_a_rate_limit_that_fits_is_waited_out_once(world: World) -> None:
    world.discord.add_invite("slow-1")
    world.discord.faults.append(rate_limited(2.0, "user"))
    summary = world.runner().run(rule(codes=["slow-1"]), lambda_time(world.clock, 300))
    assert (summary.revoked, world.discord.deleted) == (1, ["slow-1"])


def test_a_missing_permission_fails_one_invite_not_the_run(world: World) -> None:
    for code in ("locked-1", "open-1"):
        world.discord.add_invite(code)
    world.discord.refuse["DELETE /invites/locked-1"] = DiscordMissingPermissions(status=403)
    summary = world.runner().run(rule(codes=["locked-1", "open-1"]), lambda_time(world.clock, 300))
    assert (summary.failed, summary.revoked) == (1, 1)


def test_a_run_that_meets_a_long_rate_limit_stops_and_fails(world: World) -> None:
    world.discord.add_invite("one-1")
    world.discord.faults.append(rate_limited(60.0, "user"))
    with pytest.raises(RuleRunFailed, match="rate_limited"):
        world.runner().run(rule(codes=["one-1"]), lambda_time(world.clock, 300))


# -- deadlines ----------------------------------------------------------------------------


class SlowNotifier:
    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds, self.sent = clock, seconds, 0

    def send(self, content: str, deadline: Deadline) -> None:
        self.clock.advance(self.seconds)
        self.sent += 1


def worst_case_world(settings: RevokerSettings, *, forbidden: bool = False) -> World:
    """Every call as slow as its timeouts allow, every code cached in the assumed variants."""
    world = World()
    now = world.clock.now
    for n in range(40):
        code = f"doomed-{n:02}"
        world.discord.add_invite(code, created_at=iso(now - 86_400 + n), max_age=0)
        for v in range(RESERVE_VARIANTS):
            variant = f"counts=0#event={v}"
            world.cache.put(invite_entry(code, variant, "{}", None, now, POLICY))
            world.lease_records[(code, variant)] = LeaseRecord("elsewhere", now)
    world.api()  # eviction clears the leases of the world's instances
    if forbidden:  # each DELETE is one more invalid answer to count
        world.discord.refuse["DELETE"] = DiscordMissingPermissions(status=403)
    world.table.call_seconds = settings.dynamodb_call_seconds
    world.discord.latency = settings.attempt_seconds
    world.discord.token_seconds = SECRET_READ_SECONDS
    return world


def overran(settings: RevokerSettings, timeout: float, reserve: float | None = None) -> bool:
    """Whether a sweep's invocation, with ``timeout`` seconds, answered after Lambda's timeout."""
    world = worst_case_world(settings, forbidden=timeout % 2 == 1)
    notifier = SlowNotifier(world.clock, settings.webhook_timeout)
    runner = world.runner(notifier=notifier, REVOCATION_WEBHOOK_URL="https://hook.example")
    if reserve is not None:
        runner._step_seconds = reserve
    ends = world.clock.now + timeout
    stopped: str | None = None
    try:
        summary = runner.run(
            rule(guild_id=GUILD, match={"older_than_seconds": 0}),
            lambda_time(world.clock, timeout),
        )
        stopped = summary.stopped
    except RuleRunFailed as failed:
        # A table this slow cuts an eviction short: reported, and retried, never late.
        stopped = "eviction" if "cache_eviction_failed" in str(failed) else str(failed)
    assert stopped in ("deadline", "eviction")
    assert notifier.sent == 1
    return world.clock.now > ends


SETTINGS = {"CACHE_TABLE_NAME": "unit-table", "REVOCATION_WEBHOOK_URL": "https://hook.example"}
TIMEOUTS = range(150, 450, 7)


def test_a_run_near_its_deadline_stops_in_time_with_the_worst_case() -> None:
    settings = RevokerSettings.from_env(SETTINGS)
    assert not [t for t in TIMEOUTS if overran(settings, t)]


def test_no_reserve_at_all_still_ends_in_time() -> None:
    """The reserve plans what is worth starting; what keeps a run in time is the deadline
    every call is made within (a hand-counted reserve once let runs overrun)."""
    settings = RevokerSettings.from_env(SETTINGS)
    assert not [t for t in TIMEOUTS[::4] if overran(settings, t, reserve=0.0)]


def test_a_run_with_a_60_second_timeout_revokes_what_it_matched() -> None:
    """The reserve is a step's cost at a slow table's pace, not every call's worst case
    (about 110 s once, which left a 60 s run revoking nothing)."""
    world = World()
    now = world.clock.now
    for code in ("short-1", "short-2"):
        world.discord.add_invite(code, created_at=iso(now - 7200), max_age=0)
    world.table.call_seconds = 0.25  # a slow table
    world.discord.latency = 1.0
    runner = world.runner(REVOCATION_WEBHOOK_URL="https://hook.example")
    summary = runner.run(
        rule(guild_id=GUILD, match={"older_than_seconds": 3600}), lambda_time(world.clock, 60)
    )
    assert (summary.matched, summary.revoked, summary.left, summary.stopped) == (2, 2, 0, None)
    assert sorted(world.discord.deleted) == ["short-1", "short-2"]


def test_no_time_at_all_calls_nothing_and_fails_the_run_saying_why(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.discord.add_invite("never-1")
    runner: RuleRunner = world.runner()
    with pytest.raises(RuleRunFailed, match="had no time for a step"):
        runner.run(rule(codes=["never-1"]), lambda_time(world.clock, 1.0))
    [report] = [r for r in caplog.records if r.getMessage() == "revocation rule run failed"]
    summary = report.summary  # type: ignore[attr-defined]
    assert (summary["left"], summary["stopped"], summary["error_code"]) == (
        1,
        "deadline",
        "out_of_time",
    )
    assert world.discord.calls == []


def test_a_sweep_with_time_for_one_call_stops_at_the_deadline_and_fails_to_be_retried(
    world: World,
) -> None:
    settings = RevokerSettings.from_env({"CACHE_TABLE_NAME": "unit-table"})
    world.discord.add_invite("late-1", created_at=iso(world.clock.now - 7200), max_age=0)
    world.discord.latency = 10.0
    timeout = settings.step_seconds + 5.0  # room for the vanity lookup, then no more
    with pytest.raises(RuleRunFailed, match="had no time for a step"):
        world.runner().run(
            rule(guild_id=GUILD, match={"older_than_seconds": 0}),
            lambda_time(world.clock, timeout),
        )
    assert [r.path for r in world.discord.calls] == [f"/guilds/{GUILD}/vanity-url"]
    assert world.discord.deleted == []


def test_a_rule_run_never_waits_past_its_deadline_for_the_fleet(world: World) -> None:
    world.discord.add_invite("held-1")
    settings = RevokerSettings.from_env({"CACHE_TABLE_NAME": "unit-table"})
    # Another instance's DELETE probe is in flight and never answers.
    world.fleet.view().take_bucket("bucket:invites-delete", world.clock.now, 1e6)
    timeout = settings.step_seconds + 3.0
    ends = world.clock.now + timeout
    with pytest.raises(RuleRunFailed, match="rate_limited"):
        world.runner().run(rule(codes=["held-1"]), lambda_time(world.clock, timeout))
    assert world.discord.deleted == []
    assert world.clock.now <= ends - settings.step_seconds + 0.05


def test_a_wait_for_the_fleet_inside_a_step_leaves_the_step_its_time(world: World) -> None:
    """A wait that would leave the DELETE too little time is refused: nothing is sent that
    could only time out (and maybe land on Discord) after spending a turn."""
    world.discord.add_invite("held-2")
    world.discord.latency = 2.0
    # Another instance's DELETE probe holds the bucket for 24 s.
    world.fleet.view().take_bucket("bucket:invites-delete", world.clock.now, 24.0)
    ends = world.clock.now + 30.0
    with pytest.raises(RuleRunFailed, match="rate_limited"):
        world.runner().run(rule(codes=["held-2"]), lambda_time(world.clock, 30.0))
    assert world.discord.deleted == []
    assert [r.method for r in world.discord.calls] == ["GET"]  # the lookup, and no DELETE
    settings = RevokerSettings.from_env({"CACHE_TABLE_NAME": "unit-table"})
    assert world.clock.now <= ends - settings.step_seconds


def test_an_invite_revoked_but_still_cached_fails_the_run_and_is_named(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.discord.add_invite("stuck-1")
    world.discord.add_invite("later-1")
    world.cache.put(
        invite_entry("stuck-1", "counts=0#event=-", "{}", None, world.clock.now, POLICY)
    )
    runner = world.runner()
    world.table.down = True  # Discord deletes it; its cached copy cannot be evicted
    with pytest.raises(RuleRunFailed, match="cache_eviction_failed"):
        runner.run(rule(codes=["stuck-1", "later-1"]), lambda_time(world.clock, 300))
    assert world.discord.deleted == ["stuck-1"]  # the run stopped there: nothing lost
    [report] = [r for r in caplog.records if r.getMessage() == "revocation rule run failed"]
    summary = report.summary  # type: ignore[attr-defined]
    assert (summary["revoked"], summary["failed"], summary["left"]) == (0, 1, 1)
    assert summary["not_evicted"] == ["stuck-1"]
