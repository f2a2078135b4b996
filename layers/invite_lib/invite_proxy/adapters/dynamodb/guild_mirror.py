"""Adapter: guild mode's mirror of each allowed guild's invites, in the cache table.

Each mirrored invite is an item of its own beside the code's cached answers
(``sk = "listed"``), so a lookup reads only its code's item, never a guild's
whole list. The guild's item holds when its list was last read and one digest
per invite, so a refresh writes only what changed since, and deletes what the
listing no longer has. A revocation's eviction deletes a code's mirrored item
with its cached answers (they share the code's partition). A guild holds at most
1,000 invites: their digests are about 40 kB, far under DynamoDB's 400 kB an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import TableAdapter
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import TableUnavailable
from invite_proxy.domain.guild_mirror import MirroredInvite

BATCH = 25  # BatchWriteItem's most
# A batch DynamoDB throttles comes back as UnprocessedItems: sent again this many times.
RESENDS = 3


@dataclass(frozen=True, slots=True)
class Refresh:
    """What one refresh of a guild's list did."""

    written: int
    removed: int
    unchanged: int


class DynamoDBGuildMirror(TableAdapter):
    def get(
        self, code: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> MirroredInvite | None:
        """The mirrored invite, if a listing has it and it has not expired."""
        response = self._calls.call(
            "reading the mirror",
            partial(self._client.get_item, TableName=self._table, Key=keys.listed_key(code)),
            deadline=deadline,
        )
        item = response.get("Item")
        if item is None:
            return None
        ttl = item.get(keys.TTL_ATTRIBUTE)
        expires_at = int(ttl["N"]) if ttl else None
        if expires_at is not None and expires_at <= now:
            return None
        return MirroredInvite(code, item["guild_id"]["S"], item["body"]["S"], expires_at)

    def refreshed_at(self, guild_id: str, *, deadline: Deadline = NO_DEADLINE) -> float | None:
        """When the guild's list was last read into the mirror; None: never."""
        item = self._guild_item(guild_id, deadline)
        return float(item["refreshed_at"]["N"]) if item else None

    def refresh(
        self,
        guild_id: str,
        invites: list[MirroredInvite],
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> Refresh:
        """Make the mirror the guild's listing: write what changed, delete what went."""
        before = self._guild_item(guild_id, deadline) or {}
        seen = {
            code: digest["S"] for code, digest in before.get("digests", {}).get("M", {}).items()
        }
        current = {invite.code: invite for invite in invites}
        changed = [i for i in invites if seen.get(i.code) != i.digest]
        gone = [code for code in seen if code not in current]
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": _item(invite, now)}} for invite in changed
        ]
        requests += [{"DeleteRequest": {"Key": keys.listed_key(code)}} for code in gone]
        for start in range(0, len(requests), BATCH):
            self._write_batch(requests[start : start + BATCH], deadline)
        digests = {code: {"S": invite.digest} for code, invite in current.items()}
        self._calls.call(
            f"recording the listing of guild {guild_id}",
            partial(
                self._client.put_item,
                TableName=self._table,
                Item=keys.guild_listing_key(guild_id)
                | {"refreshed_at": {"N": repr(now)}, "digests": {"M": digests}},
            ),
            deadline=deadline,
        )
        return Refresh(len(changed), len(gone), len(invites) - len(changed))

    def _guild_item(self, guild_id: str, deadline: Deadline) -> dict[str, Any] | None:
        response = self._calls.call(
            f"reading the listing of guild {guild_id}",
            partial(
                self._client.get_item,
                TableName=self._table,
                Key=keys.guild_listing_key(guild_id),
                ConsistentRead=True,
            ),
            deadline=deadline,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def _write_batch(self, batch: list[dict[str, Any]], deadline: Deadline) -> None:
        pending: dict[str, Any] = {self._table: batch}
        for _ in range(1 + RESENDS):
            response = self._calls.call(
                "writing the mirror",
                partial(self._client.batch_write_item, RequestItems=pending),
                deadline=deadline,
            )
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
        raise TableUnavailable(detail="writing the mirror: DynamoDB kept refusing a batch")


def _item(invite: MirroredInvite, now: float) -> dict[str, Any]:
    item = keys.listed_key(invite.code) | {
        "guild_id": {"S": invite.guild_id},
        "body": {"S": invite.body},
        "listed_at": {"N": repr(now)},
    }
    if invite.expires_at is not None:  # an invite that never expires stays until unlisted
        item[keys.TTL_ATTRIBUTE] = {"N": str(invite.expires_at)}
    return item
