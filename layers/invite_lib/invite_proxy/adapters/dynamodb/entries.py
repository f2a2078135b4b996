"""A cache entry as its table item, and back: the one place the item's attributes are spelt."""

from __future__ import annotations

from typing import Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.domain.cache_policy import CacheEntry, EntryKind


def item_from_entry(entry: CacheEntry) -> dict[str, Any]:
    return keys.variant_key(entry.code, entry.variant) | {
        "kind": {"S": entry.kind.value},
        "body": {"S": entry.body},
        "etag": {"S": entry.etag},
        "fetched_at": {"N": repr(entry.fetched_at)},
        "fresh_until": {"N": repr(entry.fresh_until)},
        keys.TTL_ATTRIBUTE: {"N": str(entry.expires_at)},
    }


def entry_from_item(code: str, variant: str, item: dict[str, Any]) -> CacheEntry | None:
    """Read an item back; one that does not have our shape counts as a miss."""
    try:
        return CacheEntry(
            code=code,
            variant=variant,
            kind=EntryKind(item["kind"]["S"]),
            body=item["body"]["S"],
            etag=item["etag"]["S"],
            fetched_at=float(item["fetched_at"]["N"]),
            fresh_until=float(item["fresh_until"]["N"]),
            expires_at=int(item[keys.TTL_ATTRIBUTE]["N"]),
        )
    except (KeyError, ValueError):
        return None
