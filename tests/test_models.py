"""Input validation at the edge, and Discord payloads that keep every field."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invite_proxy.errors import InvalidInput
from invite_proxy.models import INVITE_CODE_PATTERN, Invite, InviteQuery

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
