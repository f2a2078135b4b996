"""Every key in the table, and its TTL attribute: the one place their formats are spelt.

    pk = "invite#<code>"   sk = "variant#<variant>"   a cached answer (cache.py)
                           sk = "lease#<variant>"     its fetch lease (leases.py)
                           sk = "revoked"             when the code was last revoked
                           sk = "unknown"             Discord said no such invite, whatever
                                                      the variant asked (cache.py)
                           sk = "event#<id>"          an event id found not to be the invite's
                                                      guild's, whatever else asked (cache.py)
                           sk = "listed"              the invite as its guild's listing shows
                                                      it (guild_mirror.py)
    pk = "invite#guild:<id>"  sk = "lease#<work>"     who reads the guild's list, counts or
                                                      events now (leases.py; no code has ':')
    pk = "guild#<id>"      sk = "listing"             a digest per invite of the guild's last
                                                      list read (guild_mirror.py)
                           sk = "events"              its scheduled events (guild_mirror.py)
    pk = "icon#<guild id>" sk = "<hash>.<png|gif>"    a guild icon as Discord's CDN sent it
                                                      (icons.py)
    pk = "guilds#mirror"   sk = "state"               every allowed guild's record: when its
                                                      list was read, its vanity code, counts
    pk = "fleet#blocks"    sk = "all"                 the fleet's blocks, each target's end
                                                      and reason attributes of one item,
                                                      which has no TTL (fleet_state.py; a
                                                      new key: see deploy.md, "Updating")
    pk = "fleet#invalid"   sk = "window#<n>"
    pk = "fleet#rate"      sk = "second#<t>"
    pk = "fleet#bucket"    sk = "<bucket>"
    pk = "fleet#allowance#<name>"  sk = "allowance"   a continuously refilling allowance

Every item but the blocks' carries ``ttl`` (epoch seconds). DynamoDB deletes expired
items lazily, days later if it likes, so reads check it themselves.
"""

from __future__ import annotations

from typing import Any

TTL_ATTRIBUTE = "ttl"
VARIANT_PREFIX = "variant#"
LEASE_PREFIX = "lease#"
REVOKED_SORT_KEY = "revoked"
UNKNOWN_SORT_KEY = "unknown"
LISTED_SORT_KEY = "listed"
FOREIGN_EVENT_PREFIX = "event#"

BLOCKS = "fleet#blocks"
INVALID = "fleet#invalid"
RATE = "fleet#rate"
BUCKET = "fleet#bucket"

Key = dict[str, Any]


def key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def invite_partition(code: str) -> str:
    return f"invite#{code}"


def variant_key(code: str, variant: str) -> Key:
    return key(invite_partition(code), VARIANT_PREFIX + variant)


def lease_key(code: str, variant: str) -> Key:
    return key(invite_partition(code), LEASE_PREFIX + variant)


def revoked_key(code: str) -> Key:
    return key(invite_partition(code), REVOKED_SORT_KEY)


def unknown_key(code: str) -> Key:
    return key(invite_partition(code), UNKNOWN_SORT_KEY)


def foreign_event_key(code: str, event_id: str) -> Key:
    return key(invite_partition(code), FOREIGN_EVENT_PREFIX + event_id)


def listed_key(code: str) -> Key:
    return key(invite_partition(code), LISTED_SORT_KEY)


def code_of_partition(pk: str) -> str:
    return pk.removeprefix("invite#")


def guild_listing_key(guild_id: str) -> Key:
    return key(f"guild#{guild_id}", "listing")


def guild_events_key(guild_id: str) -> Key:
    return key(f"guild#{guild_id}", "events")


def icon_key(guild_id: str, file_name: str) -> Key:
    return key(f"icon#{guild_id}", file_name)


def mirror_state_key() -> Key:
    return key("guilds#mirror", "state")


def blocks_key() -> Key:
    """Every block one item: a lookup's claim checks them all in one condition."""
    return key(BLOCKS, "all")


def allowance_key(name: str) -> Key:
    """One allowance an item of its own: a caller's share is written as often as it calls."""
    return key(f"fleet#allowance#{name}", "allowance")


def window_sort_key(window: int) -> str:
    return f"window#{window}"


def second_sort_key(second: int) -> str:
    return f"second#{second}"
