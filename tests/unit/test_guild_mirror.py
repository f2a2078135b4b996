"""Guild mode's rules: a listed invite, published as a lookup would answer it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from invite_proxy.domain.guild_mirror import expiry_of, lookup_body, mirrored

CREATED = "2026-12-01T10:00:00+00:00"


def listed(**fields: Any) -> dict[str, Any]:
    return {
        "type": 0,
        "code": "mirror-1",
        "expires_at": None,
        "guild": {"id": "1000", "name": "G"},
        "guild_id": "1000",
        "channel": {"id": "2000", "name": "general", "type": 0},
        "uses": 3,
        "max_uses": 0,
        "max_age": 0,
        "temporary": False,
        "created_at": CREATED,
        "a_field_discord_added_later": {"kept": True},
    } | fields


def test_a_listed_invite_is_published_without_the_listings_metadata() -> None:
    invite = mirrored(listed(), "1000")
    assert invite is not None
    body = json.loads(invite.body)
    assert not {"uses", "max_uses", "max_age", "temporary", "created_at"} & set(body)
    assert body["a_field_discord_added_later"] == {"kept": True}  # never stripped
    assert (body["code"], body["expires_at"], invite.guild_id) == ("mirror-1", None, "1000")


def test_an_invites_life_is_its_own() -> None:
    created = datetime.fromisoformat(CREATED).timestamp()
    assert expiry_of(listed(max_age=3600)) == created + 3600
    assert expiry_of(listed(max_age=0)) is None  # never expires
    stated = datetime(2026, 12, 2, tzinfo=UTC)
    assert expiry_of(listed(expires_at=stated.isoformat(), max_age=60)) == stated.timestamp()


def test_what_is_no_invite_is_not_mirrored() -> None:
    assert mirrored({"uses": 1}, "1000") is None
    assert mirrored(listed(code=""), "1000") is None


def test_a_lookup_with_counts_and_an_event_merges_them_in() -> None:
    invite = mirrored(listed(), "1000")
    assert invite is not None
    assert lookup_body(invite) == invite.body
    guild = {"id": "1000", "approximate_member_count": 42, "approximate_presence_count": 7}
    event = {"id": "3000", "guild_id": "1000", "name": "Game night"}
    body = json.loads(lookup_body(invite, guild=guild, event=event))
    assert (body["approximate_member_count"], body["approximate_presence_count"]) == (42, 7)
    assert body["guild_scheduled_event"] == event
    elsewhere = {"id": "3001", "guild_id": "9999"}
    assert "guild_scheduled_event" not in json.loads(lookup_body(invite, event=elsewhere))


def test_a_refresh_sees_a_change_by_its_digest() -> None:
    first, same = mirrored(listed(), "1000"), mirrored(listed(uses=99), "1000")
    renamed = mirrored(listed(channel={"id": "2000", "name": "lobby", "type": 0}), "1000")
    assert first is not None
    assert same is not None
    assert renamed is not None
    assert first.digest == same.digest  # uses is the listing's own: no rewrite for it
    assert first.digest != renamed.digest
