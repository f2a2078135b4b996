"""Adapter: the invite cache in DynamoDB.

One item per invite code and response variant (keys.py has the formats; a
variant is ``counts=<0|1>#event=<id|->``). The body is Discord's response as
one string attribute (a DynamoDB map would turn numbers into Decimals and lose
exact pass-through). ``ttl`` is the table's
TTL attribute; DynamoDB deletes expired items lazily, days later if it likes,
so every read treats an item past its ``ttl`` as absent.

A revocation leaves a marker, ``sk = "revoked"``, saying when. A lookup writes
its result only if no revocation happened after its own fetch began, so a
lookup racing a DELETE cannot put the revoked invite back. Fetch leases
(leases.py) live in the same partition.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import Refused, TableAdapter, pause
from invite_proxy.adapters.dynamodb.entries import entry_from_item, item_from_entry
from invite_proxy.adapters.dynamodb.lease_store import settle_update
from invite_proxy.domain.cache_policy import CacheEntry, EntryKind
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline

if TYPE_CHECKING:
    from invite_proxy.domain.leases import Lease

# Long enough to outlast any lookup in flight (a Lambda timeout), short enough to go away.
REVOKED_MARKER_SECONDS = 3600
_WRITE_TRIES = 3


class DynamoDBInviteCache(TableAdapter):
    def get(
        self,
        code: str,
        variant: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> CacheEntry | None:
        """The variant's live entry, if any. ``consistent`` sees a write made a moment ago
        elsewhere.

        A variant never stored may still be answered from what was learned of the code:
        a code Discord said does not exist does not exist whatever the variant asked
        (with counts, with any event id). The lookup's claim of a lease reads that marker
        in the same call (lease_store.py), so a flood of variants of one unknown code
        costs no call to Discord, and a miss no read more.
        """
        item = self._item(keys.variant_key(code, variant), deadline, consistent=consistent)
        entry = entry_from_item(code, variant, item) if item is not None else None
        return None if entry is None or entry.is_expired(now) else entry

    def remember(self, entry: CacheEntry, asked_at: float) -> None:
        """The table has it already: nothing to keep (the memory tier keeps it)."""

    def foreign_event(
        self, code: str, event_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> bool:
        """Whether the event id was found not to be the invite's guild's, lately."""
        item = self._item(keys.foreign_event_key(code, event_id), deadline)
        return item is not None and int(item[keys.TTL_ATTRIBUTE]["N"]) > now

    def remember_foreign_event(
        self, code: str, event_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        item = keys.foreign_event_key(code, event_id) | {
            keys.TTL_ATTRIBUTE: {"N": str(math.ceil(until))}
        }
        self._calls.call(
            "PutItem",
            partial(self._client.put_item, TableName=self._table, Item=item),
            deadline=deadline,
        )

    def put(
        self,
        entry: CacheEntry,
        *,
        fetch_started: float | None = None,
        lease: Lease | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> bool:
        """Store an entry; with ``fetch_started``, only if the code was not revoked since.

        Returns False when a revocation won the race and nothing was written. With the
        ``lease`` that fetched it, written settles the lease through the entry's freshness
        in the same call (one fetch per window, lease_store.py); not written, the lease is
        still the caller's to settle.
        """
        item = item_from_entry(entry)
        puts: list[Any] = [{"Put": {"TableName": self._table, "Item": item}}]
        if entry.kind is EntryKind.UNKNOWN:
            # Learned for the code, not for this variant alone (see get).
            marker = item | keys.unknown_key(entry.code)
            puts.append({"Put": {"TableName": self._table, "Item": marker}})
        what = f"writing {entry.code!r}"
        if fetch_started is None:
            send = (
                partial(self._client.put_item, TableName=self._table, Item=item)
                if len(puts) == 1
                else partial(self._client.transact_write_items, TransactItems=puts)
            )
            self._calls.call(what, send, deadline=deadline)
            return True
        check = {
            "TableName": self._table,
            "Key": keys.revoked_key(entry.code),
            "ConditionExpression": "attribute_not_exists(pk) OR revoked_at < :started",
            "ExpressionAttributeValues": {":started": {"N": repr(fetch_started)}},
        }
        settle = [] if lease is None else [settle_update(self._table, lease, entry.fresh_until)]
        for attempt in range(_WRITE_TRIES):
            if attempt:
                pause()  # another transaction met on one of its items: let it finish
            items = [{"ConditionCheck": check}, *puts, *({"Update": s} for s in settle)]
            written = self._calls.write_if(
                what,
                partial(self._client.transact_write_items, TransactItems=items),
                deadline=deadline,
            )
            if not isinstance(written, Refused):
                return True
            if written.refused(0):
                return False  # revoked since the fetch began
            if settle and written.refused(len(items) - 1):
                settle = []  # the lease is not ours any more (it ran out): write alone
        return False  # conflicts all along: not cached, the next lookup fetches again

    def evict(self, code: str, revoked_at: float, *, deadline: Deadline = NO_DEADLINE) -> list[str]:
        """Delete every cached variant and lease of a code, and mark it revoked at ``revoked_at``.

        Returns the invite bodies the variants held. Each call is essential: made with
        the time there is, and waited for until the deadline. An eviction cut short
        raises TableUnavailable, and what it left is the caller's to report, never late.
        """
        bodies = []
        # The mark first: a lookup that writes after it is refused, and one that wrote
        # before it is deleted below. Marking last would leave a gap between the two.
        marker = keys.revoked_key(code) | {
            "revoked_at": {"N": repr(revoked_at)},
            keys.TTL_ATTRIBUTE: {"N": str(math.ceil(revoked_at) + REVOKED_MARKER_SECONDS)},
        }
        self._calls.call(
            f"marking {code!r} revoked",
            lambda: self._client.put_item(TableName=self._table, Item=marker),
            essential=True,
            deadline=deadline,
        )
        for item in self._items(code, "#sk, #kind, #body, #guild", deadline, essential=True):
            sk = item["sk"]["S"]
            if sk == keys.REVOKED_SORT_KEY or sk.startswith(keys.FOREIGN_EVENT_PREFIX):
                continue  # what was learned of an event id harms nothing: left to its TTL
            if sk == keys.LISTED_SORT_KEY and "guild_id" in item:
                # Its guild's next list read writes it again if Discord still lists it (a
                # DELETE that failed): the digest that would say "unchanged" goes first.
                self._forget_digest(code, item["guild_id"]["S"], deadline)
            # Variants and fetch leases alike: a lease must not outlive what it guarded.
            self._delete(code, item["sk"]["S"], deadline, essential=True)
            if item.get("kind", {}).get("S") == EntryKind.INVITE.value and "body" in item:
                bodies.append(item["body"]["S"])
        return bodies

    def _forget_digest(self, code: str, guild_id: str, deadline: Deadline) -> None:
        self._calls.write_if(
            f"forgetting {code!r} in its guild's listing",
            partial(
                self._client.update_item,
                TableName=self._table,
                Key=keys.guild_listing_key(guild_id),
                UpdateExpression="REMOVE digests.#code",
                ConditionExpression="attribute_exists(pk)",  # never a listing made of nothing
                ExpressionAttributeNames={"#code": code},
            ),
            deadline=deadline,
        )

    def shorten_ttl(self, code: str, ttl: int, *, deadline: Deadline = NO_DEADLINE) -> int:
        """Bring every cached variant's TTL forward to ``ttl`` (never later); return how many.

        Fetch leases go: one held through a freshness that now outlives the
        invite would keep others from fetching after the copy expired.
        """
        shortened = 0
        for item in self._items(code, "#sk", deadline):
            sk = item["sk"]["S"]
            if sk.startswith(keys.LEASE_PREFIX):
                self._delete(code, sk, deadline)
            elif sk.startswith(keys.VARIANT_PREFIX):
                updated = self._calls.write_if(
                    f"shortening the TTL of {code!r}",
                    partial(
                        self._client.update_item,
                        TableName=self._table,
                        Key=keys.key(keys.invite_partition(code), sk),
                        UpdateExpression="SET #ttl = :ttl",
                        ConditionExpression="attribute_exists(pk) AND #ttl > :ttl",
                        ExpressionAttributeNames={"#ttl": keys.TTL_ATTRIBUTE},
                        ExpressionAttributeValues={":ttl": {"N": str(ttl)}},
                    ),
                    deadline=deadline,
                )
                shortened += not isinstance(updated, Refused)
        return shortened

    def _delete(self, code: str, sk: str, deadline: Deadline, *, essential: bool = False) -> None:
        key = keys.key(keys.invite_partition(code), sk)
        self._calls.call(
            f"deleting {code!r} {sk}",
            lambda: self._client.delete_item(TableName=self._table, Key=key),
            essential=essential,
            deadline=deadline,
        )

    def _items(
        self, code: str, projection: str, deadline: Deadline, *, essential: bool = False
    ) -> Iterator[dict[str, Any]]:
        names = {"#sk": "sk", "#kind": "kind", "#body": "body", "#guild": "guild_id"}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": keys.invite_partition(code)}},
            "ProjectionExpression": projection,
            "ExpressionAttributeNames": {k: v for k, v in names.items() if k in projection},
            "ConsistentRead": True,
        }
        while True:
            response = self._calls.call(
                f"listing the copies of {code!r}",
                partial(self._client.query, **kwargs),
                essential=essential,
                deadline=deadline,
            )
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
