"""Input validation at the edge, and Discord payloads that keep every field."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invite_proxy.adapters.discord.client import encode_audit_reason
from invite_proxy.domain.errors import InvalidInput
from invite_proxy.domain.inputs import (
    AUDIT_REASON_HEADER_PATTERN,
    INVITE_CODE_PATTERN,
    InviteQuery,
    reason_from_header,
)
from invite_proxy.domain.models import GuildInvite, Invite
from invite_proxy.domain.payloads import guild_of, vanity_code_of

VALID_CODES = ["ab", "discord-developers", "0vCdhLbwjZZTWZLD", "a" * 32, "ABC-123-xyz"]
INVALID_CODES = [
    "",
    "a",
    "a" * 33,
    "a/b",
    "../guilds",
    "..",
    "a.b",
    "a%2Fb",
    "a%2e%2e",
    "a_b",
    "a b",
    "abc\x00",
    "ünï",
    "abc?x=1",
    "abc#x",
    "abc\n",
]


@pytest.mark.parametrize("code", VALID_CODES)
def test_valid_codes_are_accepted(code: str) -> None:
    assert InviteQuery.parse(code, None).code == code


@pytest.mark.parametrize("code", INVALID_CODES)
def test_invalid_codes_are_rejected_with_a_clear_message(code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        InviteQuery.parse(code, None)
    assert "code" in caught.value.public_message
    assert "letters, digits or '-'" in caught.value.public_message


@given(st.from_regex(INVITE_CODE_PATTERN, fullmatch=True))
def test_every_code_of_the_documented_shape_is_accepted(code: str) -> None:
    assert InviteQuery.parse(code, {}).code == code


@given(
    st.text(min_size=2, max_size=32).filter(
        lambda s: any(not (c.isascii() and (c.isalnum() or c == "-")) for c in s)
    )
)
def test_any_other_character_is_rejected(code: str) -> None:
    with pytest.raises(InvalidInput):
        InviteQuery.parse(code, {})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("1", True), ("false", False), ("0", False)],
)
def test_with_counts_accepts_discord_booleans(raw: str, expected: bool) -> None:
    assert InviteQuery.parse("abc", {"with_counts": raw}).with_counts is expected


@pytest.mark.parametrize("raw", ["yes", "", "2", "true,false", "on"])
def test_with_counts_rejects_anything_else(raw: str) -> None:
    with pytest.raises(InvalidInput, match="with_counts: must be true or false"):
        InviteQuery.parse("abc", {"with_counts": raw})


@pytest.mark.parametrize("raw", ["abc", "-1", "1" * 21, "12 3", ""])
def test_event_id_must_be_a_snowflake(raw: str) -> None:
    with pytest.raises(InvalidInput, match="guild_scheduled_event_id: must be a snowflake"):
        InviteQuery.parse("abc", {"guild_scheduled_event_id": raw})


def test_with_expiration_is_accepted_and_ignored() -> None:
    plain = InviteQuery.parse("abc", {})
    with_exp = InviteQuery.parse("abc", {"with_expiration": "true"})
    assert with_exp == plain
    assert with_exp.upstream_params() == {}
    assert with_exp.variant == plain.variant


def test_variant_and_upstream_params_follow_the_body_changing_parameters() -> None:
    query = InviteQuery.parse("abc", {"with_counts": "1", "guild_scheduled_event_id": "123"})
    assert query.variant == "counts=1#event=123"
    assert query.upstream_params() == {"with_counts": "true", "guild_scheduled_event_id": "123"}
    assert InviteQuery.parse("abc", {}).variant == "counts=0#event=-"


def test_invite_model_keeps_unknown_fields() -> None:
    payload = {
        "code": "abc",
        "expires_at": None,
        "guild": {"id": "1", "name": "G", "brand_new": [1, 2]},
        "profile": {"tag": "X"},
    }
    invite = Invite.model_validate(payload)
    assert json.loads(invite.model_dump_json(exclude_unset=True)) == payload


# -- X-Audit-Log-Reason --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("spam cleanup", "spam cleanup"),
        ("spam%20cleanup", "spam cleanup"),
        ("Sp%C3%A4m%20%E2%9C%93", "Späm ✓"),
        ("100%25 sure", "100% sure"),
        ("x" * 512, "x" * 512),
        ("%C3%A4" * 512, "ä" * 512),  # 512 characters once decoded, whatever the bytes
    ],
)
def test_audit_reason_is_url_decoded_utf8(raw: str, reason: str) -> None:
    assert reason_from_header(raw) == reason


def test_absent_audit_reason_is_none() -> None:
    assert reason_from_header(None) is None


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("", "at least 1 character"),
        ("x" * 513, "at most 512 characters"),
        ("%C3%A4" * 513, "at most 512 characters"),
        ("caf\u00e9", "URL-encoded UTF-8"),  # raw non-ASCII: percent-encode it
        ("%FF%FE", "do not decode as UTF-8"),
        ("100% sure", "two hex digits"),
        ("%zz", "two hex digits"),
        ("ends with %2", "two hex digits"),
        ("line%0Abreak", "control characters"),
        ("tab\there", "URL-encoded UTF-8"),
    ],
)
def test_malformed_audit_reasons_are_rejected(raw: str, complaint: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        reason_from_header(raw)
    message = caught.value.public_message
    assert message.startswith("Invalid X-Audit-Log-Reason:")
    assert complaint in message


@given(st.text(min_size=1, max_size=512).filter(lambda s: s.isprintable()))
def test_any_reason_survives_the_round_trip_to_discord(reason: str) -> None:
    """What the proxy sends Discord decodes to exactly what the caller meant."""
    assert reason_from_header(encode_audit_reason(reason)) == reason
    assert set(encode_audit_reason(reason)) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%"
    )


# -- guild listing items -------------------------------------------------------------------


def test_guild_invite_reads_metadata_and_keeps_the_rest() -> None:
    invite = GuildInvite.model_validate(
        {
            "code": "meta1",
            "uses": 3,
            "max_uses": 5,
            "max_age": 3600,
            "temporary": True,
            "created_at": "2026-11-01T10:00:00.000000+00:00",
            "expires_at": "2026-11-01T11:00:00.000000+00:00",
            "channel": {"id": "11", "name": "general"},
            "inviter": {"id": "22", "username": "mod"},
            "guild": {"id": "33", "vanity_url_code": "vanity"},
            "roles": [{"id": "44"}],
        }
    )
    assert (invite.uses, invite.max_uses, invite.temporary) == (3, 5, True)
    assert invite.channel is not None
    assert invite.channel.id == "11"
    assert invite.guild is not None
    assert invite.guild.model_dump()["vanity_url_code"] == "vanity"  # nested extras are kept
    assert invite.is_permanent() is False
    assert invite.model_dump()["roles"] == [{"id": "44"}]


@pytest.mark.parametrize(
    ("fields", "permanent"),
    [
        ({"max_age": 0, "expires_at": None}, True),
        ({"max_age": 0}, True),
        ({"expires_at": None}, True),
        ({"max_age": 60, "created_at": "2026-11-01T10:00:00+00:00"}, False),
        ({"expires_at": "2026-11-01T10:00:00+00:00"}, False),
        ({}, None),  # nothing says: a rule never guesses
    ],
)
def test_guild_invite_knows_when_it_is_permanent(
    fields: dict[str, object], permanent: bool | None
) -> None:
    assert GuildInvite.model_validate({"code": "p1", **fields}).is_permanent() is permanent


@pytest.mark.parametrize(
    ("payload", "guild", "vanity"),
    [
        ({"code": "v", "guild": {"id": "33", "vanity_url_code": "v"}}, "33", "v"),
        ({"code": "x", "guild_id": "34", "guild": {"id": "34"}}, "34", None),
        ({"code": "y", "guild": {"id": 35, "vanity_url_code": ""}}, "35", None),
        ({"code": "z"}, None, None),
        (["not", "an", "invite"], None, None),
    ],
)
def test_an_invites_guild_and_vanity_code_are_found_one_way(
    payload: object, guild: str | None, vanity: str | None
) -> None:
    assert (guild_of(payload), vanity_code_of(payload)) == (guild, vanity)


@given(st.from_regex(AUDIT_REASON_HEADER_PATTERN, fullmatch=True).filter(lambda s: len(s) <= 512))
def test_every_reason_header_the_contract_allows_is_accepted(raw: str) -> None:
    # The OpenAPI document publishes this pattern: a client that keeps to it is never refused.
    assert reason_from_header(raw)


@given(st.text(min_size=1, max_size=100).filter(lambda s: s == s.strip()))
def test_the_contract_allows_exactly_the_reasons_the_proxy_accepts(text: str) -> None:
    raw = encode_audit_reason(text)
    try:
        accepted = reason_from_header(raw) == text
    except InvalidInput:
        accepted = False  # control characters: refused by both
    assert bool(re.fullmatch(AUDIT_REASON_HEADER_PATTERN, raw)) == accepted
