"""The scheduled revoker, end to end: the real handler, the Discord emulator, moto."""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from discord_emulator import DiscordEmulator, Fault
from discord_emulator.state import Guild
from invite_proxy.adapters.dynamodb.cache import DynamoDBInviteCache
from invite_proxy.adapters.fleet_state.dynamodb import DynamoDBFleetState
from invite_proxy.domain.cache_policy import CachePolicy, invite_entry
from invite_proxy.domain.costs import ANSWER_RESERVE_SECONDS, REPORTING_SECONDS
from invite_proxy.domain.errors import InvalidInput, RuleRunFailed
from invite_proxy.edges.settings import RevokerSettings
from tests.conftest import ScriptedContext, closed_port

DELETE_ROUTE = "DELETE /invites/{code}"
LIST_ROUTE = "GET /guilds/{guild_id}/invites"
VANITY = "sweep-vanity"
Invoke = Callable[..., Any]


@pytest.fixture
def sweep_guild(emulator: DiscordEmulator) -> Guild:
    guild = emulator.state.add_guild("Sweep", vanity_url_code=VANITY, features=["VANITY_URL"])
    emulator.state.add_invite(guild, code=VANITY)
    return guild


@pytest.fixture
def invoke(revoker: Callable[..., Invoke]) -> Invoke:
    return revoker()


def rule(**fields: Any) -> dict[str, Any]:
    return {"name": "test-rule"} | fields


def deleted(emulator: DiscordEmulator) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in emulator.state.requests_to(DELETE_ROUTE)]


def alive(emulator: DiscordEmulator, *codes: str) -> list[str]:
    return [code for code in codes if emulator.state.find_invite(code) is not None]


def summary_line(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    [record] = [r for r in caplog.records if r.getMessage().startswith("revocation rule run")]
    return record.summary  # type: ignore[attr-defined,no-any-return]


def emf_blobs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = capsys.readouterr().out.splitlines()
    return [json.loads(line) for line in lines if '"_aws"' in line]


# -- every criterion, end to end -------------------------------------------------------------

NOW = time.time()
CRITERIA: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "channel_ids": ({"channel_ids": ["777"]}, {"channel_id": "777"}, {"channel_id": "778"}),
    "inviter_ids": ({"inviter_ids": ["888"]}, {"inviter_id": "888"}, {"inviter_id": "889"}),
    "older_than_seconds": (
        {"older_than_seconds": 3600},
        {"created_at": NOW - 7200},
        {"created_at": NOW - 60},
    ),
    "created_before": (
        {"created_before": datetime.fromtimestamp(NOW - 3600, UTC).isoformat()},
        {"created_at": NOW - 7200},
        {"created_at": NOW - 60},
    ),
    "min_uses": ({"min_uses": 3}, {"uses": 5}, {"uses": 1}),
    "max_uses_reached": (
        {"max_uses_reached": True},
        {"uses": 5, "max_uses": 5},
        {"uses": 1, "max_uses": 5},
    ),
    "temporary": ({"temporary": True}, {"temporary": True}, {"temporary": False}),
    "expires_within_seconds": (
        {"expires_within_seconds": 3600},
        {"max_age": 600},
        {"max_age": 86400},
    ),
    "permanent": ({"permanent": True}, {"max_age": 0}, {"max_age": 86400}),
}


@pytest.mark.parametrize("criterion", sorted(CRITERIA))
def test_each_criterion_revokes_exactly_what_it_matches(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild, criterion: str
) -> None:
    criteria, matching, other = CRITERIA[criterion]
    emulator.state.add_invite(sweep_guild, code="match-me", **matching)
    emulator.state.add_invite(sweep_guild, code="spare-me", **other)
    summary = invoke(rule(guild_id=sweep_guild.id, match=criteria))
    assert (summary["matched"], summary["revoked"], summary["failed"]) == (1, 1, 0)
    assert deleted(emulator) == ["match-me"]
    assert alive(emulator, "spare-me", VANITY) == ["spare-me", VANITY]


def test_exclusions_win(invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild) -> None:
    for code in ("old-1", "old-2", "old-3"):
        emulator.state.add_invite(sweep_guild, code=code, created_at=NOW - 7200)
    summary = invoke(
        rule(
            guild_id=sweep_guild.id,
            match={"older_than_seconds": 3600},
            exclude_codes=["old-2"],
        )
    )
    assert (summary["matched"], summary["revoked"], summary["excluded"]) == (2, 2, 1)
    assert alive(emulator, "old-1", "old-2", "old-3") == ["old-2"]


def test_the_vanity_code_is_never_touched_even_if_the_listing_shows_it(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    emulator.state.add_invite(sweep_guild, code="plain-1")
    listing = [emulator.state.invite_metadata_body(i) for i in emulator.state.invites.values()]
    emulator.state.inject(Fault(status=200, body=json.dumps(listing), route=LIST_ROUTE))
    summary = invoke(rule(guild_id=sweep_guild.id, match={"older_than_seconds": 0}))
    assert (summary["revoked"], summary["vanity_skipped"]) == (1, 1)
    assert deleted(emulator) == ["plain-1"]


def test_a_vanity_code_named_in_codes_is_skipped(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    emulator.state.add_invite(sweep_guild, code="named-1")
    summary = invoke(rule(codes=[VANITY, "named-1"]))
    assert (summary["matched"], summary["revoked"], summary["vanity_skipped"]) == (1, 1, 1)
    assert deleted(emulator) == ["named-1"]


def test_codes_need_no_listing_and_unknown_ones_count_as_already_gone(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    emulator.state.add_invite(sweep_guild, code="real-1")
    summary = invoke(rule(codes=["real-1", "ghost-1", "real-1"], exclude_codes=["keep-1"]))
    assert (summary["matched"], summary["revoked"], summary["already_gone"]) == (2, 1, 1)
    assert emulator.state.requests_to(LIST_ROUTE) == []
    assert deleted(emulator) == ["real-1"]


def test_dry_run_reports_and_deletes_nothing(
    invoke: Invoke,
    emulator: DiscordEmulator,
    sweep_guild: Guild,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for code in ("dry-1", "dry-2"):
        emulator.state.add_invite(sweep_guild, code=code, uses=9)
    emulator.state.add_invite(sweep_guild, code="dry-3", uses=0)
    summary = invoke(rule(guild_id=sweep_guild.id, match={"min_uses": 1}, dry_run=True))
    assert summary["dry_run"] is True
    assert sorted(summary["would_revoke"]) == ["dry-1", "dry-2"]
    assert (summary["matched"], summary["revoked"]) == (2, 0)
    assert deleted(emulator) == []
    assert alive(emulator, "dry-1", "dry-2", "dry-3") == ["dry-1", "dry-2", "dry-3"]
    [metrics] = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if "RuleMatched" in line
    ]
    assert (metrics["Rule"], metrics["DryRun"], metrics["RuleMatched"]) == (
        "test-rule",
        "true",
        [2.0],
    )


def test_a_dry_run_of_codes_checks_without_deleting(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    emulator.state.add_invite(sweep_guild, code="dry-c1")
    summary = invoke(rule(codes=["dry-c1", "ghost-2", VANITY], dry_run=True))
    assert summary["would_revoke"] == ["dry-c1"]
    assert (summary["already_gone"], summary["vanity_skipped"]) == (1, 1)
    assert deleted(emulator) == []


# -- deadlines -------------------------------------------------------------------------------


def step_seconds() -> float:
    """The step reserve the loaded function keeps, from the settings it was loaded with."""
    return RevokerSettings.from_env().step_seconds


# Every Discord answer takes this long, so a run's real time is counted in calls. Steps
# are a few calls apart, and the deadline falls halfway between two of them.
CALL = 1.0
KEPT = ANSWER_RESERVE_SECONDS + REPORTING_SECONDS  # the handler's and the report's, no webhook


def lambda_timeout(seconds: float) -> ScriptedContext:
    """A context whose deadline leaves the run ``seconds`` for its calls."""
    return ScriptedContext(lambda: round((seconds + KEPT) * 1000))


def test_a_run_stops_before_the_deadline_and_the_next_picks_up_the_rest(
    revoker: Callable[..., Invoke], emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    invoke = revoker(RULE_PARALLEL_REVOCATIONS="1")  # one timeline: a call after another
    emulator.state.latency = CALL
    codes = [f"late-{n}" for n in range(5)]
    for offset, code in enumerate(codes):
        emulator.state.add_invite(sweep_guild, code=code, created_at=NOW - 7200 + offset)
    sweep = rule(guild_id=sweep_guild.id, match={"older_than_seconds": 3600})

    # The vanity code and the listing, then three deletions, each a call: the fourth
    # would start with half a call less than the reserve left.
    first = invoke(sweep, lambda_timeout(5 * CALL + step_seconds() - CALL / 2))
    assert (first["matched"], first["revoked"], first["left"]) == (5, 3, 2)
    assert first["stopped"] == "deadline"
    assert sorted(deleted(emulator)) == codes[:3]  # the oldest first

    emulator.state.latency = 0.0
    second = invoke(sweep)
    assert (second["matched"], second["revoked"], second["left"]) == (2, 2, 0)
    assert second["stopped"] is None
    assert alive(emulator, *codes) == []


def test_revocations_overlap_after_the_first_ends_well(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    """One at a time cannot keep up with a bucket that refills faster than a revocation
    takes: after the first one ends well, the run keeps several in flight."""
    latency = 0.5  # each Discord answer; one at a time, DELETEs would be this far apart
    emulator.state.latency = latency
    codes = [f"many-{n}" for n in range(8)]
    for offset, code in enumerate(codes):
        emulator.state.add_invite(sweep_guild, code=code, created_at=NOW - 7200 + offset)
    summary = invoke(rule(guild_id=sweep_guild.id, match={"older_than_seconds": 3600}))
    assert (summary["matched"], summary["revoked"], summary["left"]) == (8, 8, 0)
    assert sorted(deleted(emulator)) == codes
    arrivals = [r.at for r in emulator.state.requests_to(DELETE_ROUTE)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[0] >= latency  # the first alone: a failing Discord meets one request
    assert min(gaps) < latency / 2  # then several at once


def test_a_codes_run_checks_the_time_between_lookup_and_delete(
    revoker: Callable[..., Invoke], emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    invoke = revoker(RULE_PARALLEL_REVOCATIONS="1")
    emulator.state.latency = CALL
    for code in ("step-1", "step-2", "step-3"):
        emulator.state.add_invite(sweep_guild, code=code)
    # step-1: its lookup and its delete. step-2 starts with the reserve in hand, and after
    # its lookup has half a call less: no time to delete it.
    summary = invoke(
        rule(codes=["step-1", "step-2", "step-3"]),
        lambda_timeout(2 * CALL + step_seconds() + CALL / 2),
    )
    assert (summary["revoked"], summary["left"], summary["stopped"]) == (1, 2, "deadline")
    assert deleted(emulator) == ["step-1"]


def test_no_time_at_all_deletes_nothing_and_fails_the_run_saying_why(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    emulator.state.add_invite(sweep_guild, code="never-1")
    with pytest.raises(Exception, match="had no time for a step") as failed:
        invoke(rule(codes=["never-1"]), ScriptedContext(lambda: 1_000))
    assert type(failed.value).__name__ == "RuleRunFailed"  # the scheduler retries it
    assert emulator.state.requests == []


# -- reasons, failures -----------------------------------------------------------------------


def test_the_reason_defaults_to_naming_the_rule(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    emulator.state.add_invite(sweep_guild, code="why-a")
    emulator.state.add_invite(sweep_guild, code="why-b")
    invoke(rule(codes=["why-a"]))
    invoke(rule(codes=["why-b"], reason="Raid cleanup ✓"))
    assert [e.reason for e in emulator.state.audit_log] == [
        "Revocation rule test-rule",
        "Raid cleanup ✓",
    ]


def test_missing_permission_on_one_invite_does_not_stop_the_run(
    invoke: Invoke, emulator: DiscordEmulator
) -> None:
    locked = emulator.state.add_guild("Locked", manage_guild=False)
    emulator.state.add_invite(locked, code="nope-1", channel_id="901")
    emulator.state.add_invite(locked, code="okay-1", channel_id="902")
    locked.manage_channels.add("902")
    summary = invoke(rule(codes=["nope-1", "okay-1"]))
    assert (summary["revoked"], summary["failed"], summary["stopped"]) == (1, 1, None)
    assert alive(emulator, "nope-1", "okay-1") == ["nope-1"]


def test_discord_down_fails_the_invocation_after_reporting(
    invoke: Invoke,
    emulator: DiscordEmulator,
    sweep_guild: Guild,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for code in ("down-1", "down-2", "down-3"):
        emulator.state.add_invite(sweep_guild, code=code, created_at=NOW - 7200)
    emulator.state.inject(Fault(status=503, route=DELETE_ROUTE, times=10))
    caplog.set_level(logging.INFO)
    with pytest.raises(RuleRunFailed):
        invoke(rule(guild_id=sweep_guild.id, match={"older_than_seconds": 0}))
    assert len(emulator.state.requests_to(DELETE_ROUTE)) == 1  # stops; never hammers
    summary = summary_line(caplog)
    assert (summary["failed"], summary["left"], summary["stopped"]) == (1, 2, "error")
    assert summary["error_code"] == "upstream_error"


@pytest.mark.parametrize("route", [DELETE_ROUTE, "GET /invites/{code}"])
def test_a_rate_limit_that_fits_is_waited_out(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild, route: str
) -> None:
    emulator.state.add_invite(sweep_guild, code="slow-1")
    body = json.dumps(
        {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}
    )
    emulator.state.inject(Fault(status=429, body=body, route=route, headers={"Retry-After": "1"}))
    summary = invoke(rule(codes=["slow-1"]))
    assert summary["revoked"] == 1
    assert len(emulator.state.requests_to(route)) == 2


def test_a_run_respects_the_fleets_blocks_and_sends_nothing(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild, dynamodb: Any, table_name: str
) -> None:
    emulator.state.add_invite(sweep_guild, code="blocked-1", created_at=NOW - 7200)
    # What an API instance that met a Cloudflare block leaves.
    DynamoDBFleetState(dynamodb, table_name).block("cloudflare", time.time() + 600, "cloudflare")
    with pytest.raises(RuleRunFailed):
        invoke(rule(guild_id=sweep_guild.id, match={"older_than_seconds": 0}))
    assert emulator.state.requests == []  # not one call while the IP is blocked
    assert alive(emulator, "blocked-1") == ["blocked-1"]


def test_a_run_that_meets_a_global_429_stops_the_api_too(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild, dynamodb: Any, table_name: str
) -> None:
    emulator.state.add_invite(sweep_guild, code="glob-run-1")
    body = '{"message": "You are being rate limited.", "retry_after": 60.0, "global": true}'
    emulator.state.inject(
        Fault(status=429, body=body, route=DELETE_ROUTE, headers={"Retry-After": "60"})
    )
    with pytest.raises(RuleRunFailed):
        invoke(rule(codes=["glob-run-1"]))
    blocks = DynamoDBFleetState(dynamodb, table_name).active_blocks(time.time())
    assert [b.target for b in blocks] == ["global"]  # every instance now waits


def test_named_codes_outside_the_guild_are_left_alone(
    invoke: Invoke, emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    other = emulator.state.add_guild("Elsewhere")
    emulator.state.add_invite(other, code="theirs-1")
    emulator.state.add_invite(sweep_guild, code="ours-1")
    summary = invoke(rule(guild_id=sweep_guild.id, codes=["ours-1", "theirs-1"]))
    assert (summary["revoked"], summary["not_listed"]) == (1, 1)
    assert alive(emulator, "ours-1", "theirs-1") == ["theirs-1"]


def test_a_listing_the_bot_may_not_read_fails_the_invocation(
    invoke: Invoke, emulator: DiscordEmulator
) -> None:
    locked = emulator.state.add_guild("Locked", manage_guild=False)
    with pytest.raises(RuleRunFailed, match="upstream_missing_permissions"):
        invoke(rule(guild_id=locked.id, match={"min_uses": 0}))
    assert deleted(emulator) == []


def test_a_bad_rule_fails_the_invocation_naming_the_field(
    invoke: Invoke, emulator: DiscordEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(InvalidInput, match=r"match\.older_then_seconds"):
        invoke(rule(guild_id="123456789012345678", match={"older_then_seconds": 60}))
    assert emulator.state.requests == []
    assert any(r.getMessage() == "invalid revocation rule" for r in caplog.records)


# -- the cache -------------------------------------------------------------------------------


def test_revoked_invites_leave_the_cache_and_listed_ones_get_exact_ttls(
    invoke: Invoke,
    emulator: DiscordEmulator,
    sweep_guild: Guild,
    dynamodb: Any,
    table_name: str,
) -> None:
    doomed = emulator.state.add_invite(sweep_guild, code="doomed-1", uses=4)
    survivor = emulator.state.add_invite(
        sweep_guild, code="survivor-1", max_age=7200, created_at=NOW - 600
    )
    cache = DynamoDBInviteCache(dynamodb, table_name)
    policy = CachePolicy(
        fresh_seconds=60, max_age_seconds=86_400, negative_seconds=60, stale_if_error_seconds=0
    )
    later = datetime.fromtimestamp(NOW + 80_000, UTC)  # as if an older copy overestimated
    for code, variant in [
        (doomed.code, "counts=0#event=-"),
        (doomed.code, "counts=1#event=-"),
        (survivor.code, "counts=0#event=-"),
    ]:
        cache.put(
            invite_entry(
                code,
                variant,
                json.dumps({"code": code, "guild_id": sweep_guild.id}),
                later,
                NOW,
                policy,
            )
        )

    summary = invoke(rule(guild_id=sweep_guild.id, match={"min_uses": 1}))
    assert summary["revoked"] == 1
    assert summary["cache_ttls_shortened"] == 1
    assert cache.evict(doomed.code, revoked_at=time.time()) == []  # nothing was left
    [item] = dynamodb.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "invite#survivor-1"}},
    )["Items"]
    assert int(item["ttl"]["N"]) == math.floor(survivor.created_at + 7200)


# -- reporting ---------------------------------------------------------------------------------


def test_one_summary_line_and_metrics_per_run(
    invoke: Invoke,
    emulator: DiscordEmulator,
    sweep_guild: Guild,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.state.add_invite(sweep_guild, code="sum-1", temporary=True)
    caplog.set_level(logging.INFO)
    invoke(rule(codes=["sum-1", "ghost-3"]))
    summary = summary_line(caplog)
    assert {
        k: summary[k]
        for k in ("rule", "dry_run", "matched", "revoked", "already_gone", "failed", "left")
    } == {
        "rule": "test-rule",
        "dry_run": False,
        "matched": 2,
        "revoked": 1,
        "already_gone": 1,
        "failed": 0,
        "left": 0,
    }
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [metrics] = [b for b in blobs if "RuleRevoked" in b]
    assert metrics["DryRun"] == "false"
    assert {
        n: metrics[n]
        for n in ("RuleMatched", "RuleRevoked", "RuleAlreadyGone", "RuleFailed", "RuleLeft")
    } == {
        "RuleMatched": [2.0],
        "RuleRevoked": [1.0],
        "RuleAlreadyGone": [1.0],
        "RuleFailed": [0.0],
        "RuleLeft": [0.0],
    }
    audit = [r.audit for r in caplog.records if r.getMessage() == "invite revocation"]  # type: ignore[attr-defined]
    assert [(a["code"], a["actor"], a["source"], a["outcome"]) for a in audit] == [
        ("sum-1", "rule:test-rule", "schedule", "revoked"),
        ("ghost-3", "rule:test-rule", "schedule", "already_gone"),  # audited too
    ]


def test_the_summary_goes_to_a_webhook(
    revoker: Callable[..., Invoke], emulator: DiscordEmulator, sweep_guild: Guild
) -> None:
    invoke = revoker(REVOCATION_WEBHOOK_URL=f"{emulator.base_url}/webhooks/42/hook-token")
    emulator.state.add_invite(sweep_guild, code="hook-1")
    invoke(rule(codes=["hook-1"]))
    [message] = emulator.state.webhook_messages
    assert message["content"] == (
        "Revocation rule `test-rule`: matched 1, revoked 1, already gone 0, failed 0, left 0."
    )
    assert message["allowed_mentions"] == {"parse": []}
    [posted] = emulator.state.requests_to("POST /webhooks/{webhook_id}/{webhook_token}")
    assert "authorization" not in posted.headers  # never the bot token to a webhook


def test_the_webhook_url_can_come_from_secrets_manager(
    revoker: Callable[..., Invoke], emulator: DiscordEmulator, moto_endpoint: str
) -> None:
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint)
    name = f"webhook-{time.time_ns()}"
    secrets.create_secret(Name=name, SecretString=f"{emulator.base_url}/webhooks/7/secret-token")
    invoke = revoker(
        REVOCATION_WEBHOOK_SECRET_ID=name, AWS_ENDPOINT_URL_SECRETS_MANAGER=moto_endpoint
    )
    invoke(rule(codes=["ghost-4"], dry_run=True))
    [message] = emulator.state.webhook_messages
    assert message["content"].startswith("Revocation rule `test-rule` (dry run): would revoke 0")


def test_a_broken_webhook_never_fails_the_run(
    revoker: Callable[..., Invoke], caplog: pytest.LogCaptureFixture
) -> None:
    invoke = revoker(
        REVOCATION_WEBHOOK_URL=f"http://127.0.0.1:{closed_port()}/api/webhooks/1/secret-tok"
    )
    summary = invoke(rule(codes=["ghost-5"]))
    assert summary["already_gone"] == 1
    [warning] = [r for r in caplog.records if r.getMessage() == "webhook notification failed"]
    assert "secret-tok" not in str(warning.detail)  # type: ignore[attr-defined]
