"""Revocation rules: validation that names the field, and each criterion on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from invite_proxy.domain.errors import InvalidInput
from invite_proxy.domain.models import GuildInvite
from invite_proxy.domain.rules import MatchCriteria, RevocationRule, partition_codes, select

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GUILD = "1234567890123456789"


def iso(moment: datetime) -> str:
    return moment.isoformat()


def invite(code: str = "abc123", **fields: Any) -> GuildInvite:
    base: dict[str, Any] = {
        "code": code,
        "uses": 0,
        "max_uses": 0,
        "max_age": 0,
        "temporary": False,
        "created_at": iso(NOW - timedelta(hours=1)),
        "expires_at": None,
        "channel": {"id": "100"},
        "inviter": {"id": "200"},
        "guild": {"id": GUILD, "vanity_url_code": None},
    }
    return GuildInvite.model_validate(base | fields)


def rule(**fields: Any) -> RevocationRule:
    return RevocationRule.parse({"name": "test-rule", "guild_id": GUILD} | fields)


# -- each criterion: (criteria, an invite that matches, one that does not) -----------------

HOUR = 3600
CRITERIA: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    "channel_ids": ({"channel_ids": ["100", "101"]}, {}, {"channel": {"id": "999"}}),
    "inviter_ids": ({"inviter_ids": ["200"]}, {}, {"inviter": {"id": "999"}}),
    "older_than_seconds": (
        {"older_than_seconds": 2 * HOUR},
        {"created_at": iso(NOW - timedelta(hours=3))},
        {"created_at": iso(NOW - timedelta(hours=1))},
    ),
    "created_before": (
        {"created_before": "2026-11-22T11:30:00Z"},
        {"created_at": iso(NOW - timedelta(hours=1))},
        {"created_at": iso(NOW - timedelta(minutes=10))},
    ),
    "min_uses": ({"min_uses": 3}, {"uses": 3}, {"uses": 2}),
    "max_uses_reached": (
        {"max_uses_reached": True},
        {"uses": 5, "max_uses": 5},
        {"uses": 4, "max_uses": 5},
    ),
    "max_uses_not_reached": (
        {"max_uses_reached": False},
        {"uses": 4, "max_uses": 5},
        {"uses": 5, "max_uses": 5},
    ),
    "temporary": ({"temporary": True}, {"temporary": True}, {"temporary": False}),
    "expires_within_seconds": (
        {"expires_within_seconds": HOUR},
        {"max_age": 2 * HOUR, "expires_at": iso(NOW + timedelta(minutes=30))},
        {"max_age": 4 * HOUR, "expires_at": iso(NOW + timedelta(hours=3))},
    ),
    "permanent": (
        {"permanent": True},
        {},
        {"max_age": 7200, "expires_at": iso(NOW + timedelta(hours=1))},
    ),
    "not_permanent": ({"permanent": False}, {"max_age": 7200}, {"max_age": 0}),
}


@pytest.mark.parametrize("name", sorted(CRITERIA))
def test_each_criterion(name: str) -> None:
    criteria, matching, other = CRITERIA[name]
    match = MatchCriteria.model_validate(criteria)
    assert match.matches(invite(**matching), NOW)
    assert not match.matches(invite(**other), NOW)


def test_every_criterion_is_covered() -> None:
    covered = {key for criteria, _, _ in CRITERIA.values() for key in criteria}
    assert covered == set(MatchCriteria.model_fields)


@pytest.mark.parametrize(
    ("criteria", "missing"),
    [
        ({"channel_ids": ["100"]}, {"channel": None}),
        ({"inviter_ids": ["200"]}, {"inviter": None}),
        ({"older_than_seconds": 0}, {"created_at": None}),
        ({"created_before": "2030-01-01T00:00:00Z"}, {"created_at": None}),
        ({"min_uses": 0}, {"uses": None}),
        ({"max_uses_reached": False}, {"max_uses": None}),
        ({"temporary": False}, {"temporary": None}),
        ({"expires_within_seconds": 10**9}, {"max_age": None, "expires_at": None}),
    ],
)
def test_missing_metadata_never_matches(criteria: dict[str, Any], missing: dict[str, Any]) -> None:
    """A rule never revokes on a guess."""
    assert not MatchCriteria.model_validate(criteria).matches(invite(**missing), NOW)


def test_all_criteria_given_must_hold() -> None:
    match = MatchCriteria(min_uses=1, temporary=True)
    assert match.matches(invite(uses=1, temporary=True), NOW)
    assert not match.matches(invite(uses=1, temporary=False), NOW)
    assert not match.matches(invite(uses=0, temporary=True), NOW)


# -- choosing from a listing ---------------------------------------------------------------


def test_exclusions_win_and_the_vanity_code_is_never_chosen() -> None:
    listing = [invite("keep-me"), invite("vanity"), invite("revoke-me")]
    chosen = select(
        rule(match={"older_than_seconds": 0}, exclude_codes=["keep-me"]), listing, NOW, {"vanity"}
    )
    assert chosen.codes == ["revoke-me"]
    assert chosen.excluded == ["keep-me"]
    assert chosen.vanity_skipped == ["vanity"]


def test_oldest_first_and_codes_narrow_a_listing() -> None:
    listing = [
        invite("young", created_at=iso(NOW - timedelta(hours=1))),
        invite("old", created_at=iso(NOW - timedelta(hours=5))),
        invite("unnamed", created_at=iso(NOW - timedelta(hours=9))),
    ]
    assert select(rule(match={"older_than_seconds": 0}), listing, NOW, set()).codes == [
        "unnamed",
        "old",
        "young",
    ]
    assert select(rule(codes=["young", "old"]), listing, NOW, set()).codes == ["old", "young"]


def test_codes_only_rules_drop_repeats_and_exclusions() -> None:
    only_codes = RevocationRule.parse(
        {"name": "r", "codes": ["a1", "b2", "a1", "c3"], "exclude_codes": ["c3"]}
    )
    assert partition_codes(only_codes) == (["a1", "b2"], ["c3"])


def test_default_reason_names_the_rule() -> None:
    assert rule(match={"min_uses": 1}).audit_reason == "Revocation rule test-rule"
    assert rule(match={"min_uses": 1}, reason="Raid cleanup").audit_reason == "Raid cleanup"


# -- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "names"),
    [
        ({"guild_id": GUILD, "match": {"min_uses": 1}}, ["name: Field required"]),
        ({"name": "r"}, ["give guild_id"]),
        ({"name": "r", "codes": ["ab"], "match": {"min_uses": 1}}, ["match needs guild_id"]),
        ({"name": "r", "guild_id": GUILD}, ["match needs at least one criterion"]),
        ({"name": "r", "guild_id": GUILD, "match": {}}, ["match needs at least one criterion"]),
        ({"name": "r", "guild_id": "12ab", "match": {"min_uses": 1}}, ["guild_id"]),
        ({"name": "r", "codes": ["a/b"]}, ["codes.0"]),
        ({"name": "r", "codes": []}, ["codes"]),
        (
            {"name": "r", "guild_id": GUILD, "match": {"older_then_seconds": 5}},
            ["match.older_then_seconds: Extra inputs are not permitted"],
        ),
        ({"name": "r", "guild_id": GUILD, "match": {"min_uses": -1}}, ["match.min_uses"]),
        (
            {"name": "r", "guild_id": GUILD, "match": {"created_before": "2026-12-01T00:00:00"}},
            ["match.created_before", "timezone"],
        ),
        ({"name": "r", "codes": ["ab"], "reason": "x" * 513}, ["reason"]),
        ({"name": "r", "codes": ["ab"], "reason": "two\nlines"}, ["reason", "control characters"]),
        ({"name": "r", "codes": ["ab"], "dry_run": "maybe"}, ["dry_run"]),
        ({"name": "has space", "codes": ["ab"]}, ["name"]),
        ({"name": "r", "codes": ["ab"], "exclude_codes": ["../x"]}, ["exclude_codes.0"]),
    ],
)
def test_a_bad_rule_names_the_offending_field(event: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(InvalidInput) as caught:
        RevocationRule.parse(event)
    message = caught.value.public_message
    assert message.startswith("Invalid revocation rule")
    for name in names:
        assert name in message


def test_a_rule_names_itself_in_its_error() -> None:
    with pytest.raises(InvalidInput, match="revocation rule 'nightly'"):
        RevocationRule.parse({"name": "nightly", "codes": "ab"})


@pytest.mark.parametrize("event", [None, "rule", 42, ["a"]])
def test_an_event_that_is_not_an_object_is_refused(event: object) -> None:
    with pytest.raises(InvalidInput, match="Invalid revocation rule"):
        RevocationRule.parse(event)


def test_an_eventbridge_envelope_gets_a_hint() -> None:
    envelope = {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "detail": {},
    }
    with pytest.raises(InvalidInput, match="deliver the rule itself"):
        RevocationRule.parse(envelope)


def test_the_issue_example_rule_is_valid() -> None:
    parsed = RevocationRule.parse(
        {
            "name": "example",
            "guild_id": GUILD,
            "codes": ["abc123"],
            "match": {
                "channel_ids": ["100"],
                "inviter_ids": ["200"],
                "older_than_seconds": 86400,
                "created_before": "2026-12-01T00:00:00Z",
                "min_uses": 1,
                "max_uses_reached": True,
                "temporary": True,
                "expires_within_seconds": 3600,
                "permanent": True,
            },
            "exclude_codes": ["keep"],
            "dry_run": False,
            "reason": "cleanup",
        }
    )
    assert parsed.match is not None
    assert len(parsed.match.criteria()) == 9
