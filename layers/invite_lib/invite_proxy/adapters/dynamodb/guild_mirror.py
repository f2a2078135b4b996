"""Adapter: guild mode's mirror of each allowed guild's invites, in the cache table.

Each mirrored invite is an item of its own beside the code's cached answers
(``sk = "listed"``), so a lookup reads only its code's item, never a guild's
whole list. The guild's item holds one digest per invite of its last list read,
so a refresh writes only what changed since, and deletes what the
listing no longer has. A revocation's eviction deletes a code's mirrored item
with its cached answers (they share the code's partition). A guild holds at most
1,000 invites: their digests are about 40 kB, far under DynamoDB's 400 kB an item.

One more item holds every allowed guild's record (``keys.mirror_state_key``): when
its list was read, whether it could be, its vanity code and its counts, as
attributes of their own per guild (``refreshed#<id>``, ...), so each writer sets
its own and none overwrites another's. Its scheduled events have an item per guild.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import TableAdapter
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.errors import TableUnavailable
from invite_proxy.domain.guild_mirror import GuildRecord, MirroredInvite, MirrorState

BATCH = 25  # BatchWriteItem's most
READ_BATCH = 100  # BatchGetItem's most
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
        self,
        code: str,
        now: float,
        *,
        consistent: bool = False,
        deadline: Deadline = NO_DEADLINE,
    ) -> MirroredInvite | None:
        """The mirrored invite, if a listing has it and it has not expired."""
        item = self._item(
            keys.listed_key(code), deadline, consistent=consistent, what="reading the mirror"
        )
        if item is None:
            return None
        ttl = item.get(keys.TTL_ATTRIBUTE)
        expires_at = int(ttl["N"]) if ttl else None
        if expires_at is not None and expires_at <= now:
            return None
        return MirroredInvite(code, item["guild_id"]["S"], item["body"]["S"], expires_at)

    def refreshed_at(self, guild_id: str, *, deadline: Deadline = NO_DEADLINE) -> float | None:
        """When the guild's list was last read into the mirror; None: never."""
        return self.state(deadline=deadline).record(guild_id).refreshed_at

    def refresh(
        self,
        guild_id: str,
        invites: list[MirroredInvite],
        now: float,
        *,
        listed_at: float | None = None,
        lasting: str | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> Refresh:
        """Make the mirror the guild's listing, read from ``listed_at`` (``now`` by
        default): write what changed, delete what went.

        An invite revoked since the listing was read is not restored: a revocation marks
        its code before it deletes the mirrored copy, so a copy written before the mark
        is deleted by the revocation, and one written after is found here and taken back.
        """
        listed_at = now if listed_at is None else listed_at
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
        revoked = self._revoked_since([i.code for i in changed], listed_at, deadline)
        for start in range(0, len(revoked), BATCH):
            batch = revoked[start : start + BATCH]
            self._write_batch(
                [{"DeleteRequest": {"Key": keys.listed_key(code)}} for code in batch], deadline
            )
        digests = {
            code: {"S": invite.digest} for code, invite in current.items() if code not in revoked
        }
        self._calls.call(
            f"recording the listing of guild {guild_id}",
            partial(
                self._client.put_item,
                TableName=self._table,
                Item=keys.guild_listing_key(guild_id) | {"digests": {"M": digests}},
            ),
            deadline=deadline,
        )
        # The list is as old as its read: the next may start the interval after it.
        lasting_value = {"S": lasting} if lasting else {"NULL": True}
        self._set_record(
            guild_id, {"refreshed": {"N": repr(listed_at)}, "lasting": lasting_value}, deadline
        )
        return Refresh(len(changed) - len(revoked), len(gone), len(invites) - len(changed))

    def state(self, *, deadline: Deadline = NO_DEADLINE) -> MirrorState:
        """Every allowed guild's record, in one read."""
        item = self._item(keys.mirror_state_key(), deadline, what="reading the guilds' records")
        fields: dict[str, dict[str, Any]] = {}
        for name, value in (item or {}).items():
            what, _, guild_id = name.partition("#")
            if guild_id:
                fields.setdefault(guild_id, {})[what] = value
        return MirrorState({guild_id: _record(f) for guild_id, f in fields.items()})

    def record_guild(
        self,
        guild_id: str,
        counts: dict[str, int],
        vanity: str | None,
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        """What ``GET /guilds/{id}?with_counts=true`` said: its counts and vanity code."""
        counts_value = {name: {"N": str(n)} for name, n in counts.items()}
        self._set_record(
            guild_id,
            {
                "counts": {"M": counts_value},
                "counts_at": {"N": repr(now)},
                "vanity": {"S": vanity} if vanity else {"NULL": True},
            },
            deadline,
        )

    def mark_unreadable(
        self, guild_id: str, until: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        """The guild's listing was refused: its codes are looked up one by one until then."""
        self._set_record(guild_id, {"unreadable": {"N": repr(until)}}, deadline)

    def mark_vanity_read(
        self, guild_id: str, now: float, *, deadline: Deadline = NO_DEADLINE
    ) -> None:
        """The vanity invite was looked up (it is never in a listing) and mirrored."""
        self._set_record(guild_id, {"vanity_at": {"N": repr(now)}}, deadline)

    def events(
        self, guild_id: str, *, deadline: Deadline = NO_DEADLINE
    ) -> list[dict[str, Any]] | None:
        """The guild's scheduled events as last read; None: never read."""
        what = f"reading the events of guild {guild_id}"
        item = self._item(keys.guild_events_key(guild_id), deadline, what=what)
        if item is None:
            return None
        events: list[dict[str, Any]] = json.loads(item["body"]["S"])
        return events

    def record_events(
        self,
        guild_id: str,
        events: list[dict[str, Any]],
        now: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        body = json.dumps(events, separators=(",", ":"), ensure_ascii=False)
        self._calls.call(
            f"recording the events of guild {guild_id}",
            partial(
                self._client.put_item,
                TableName=self._table,
                Item=keys.guild_events_key(guild_id) | {"body": {"S": body}},
            ),
            deadline=deadline,
        )
        self._set_record(guild_id, {"events_at": {"N": repr(now)}}, deadline)

    def _set_record(self, guild_id: str, values: dict[str, Any], deadline: Deadline) -> None:
        names = {f"#a{i}": f"{name}#{guild_id}" for i, name in enumerate(values)}
        self._calls.call(
            f"recording guild {guild_id}",
            partial(
                self._client.update_item,
                TableName=self._table,
                Key=keys.mirror_state_key(),
                UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={f":v{i}": v for i, v in enumerate(values.values())},
            ),
            deadline=deadline,
        )

    def _revoked_since(self, codes: list[str], since: float, deadline: Deadline) -> list[str]:
        revoked = []
        for start in range(0, len(codes), READ_BATCH):
            pending: dict[str, Any] = {
                self._table: {
                    "Keys": [keys.revoked_key(code) for code in codes[start : start + READ_BATCH]],
                    "ProjectionExpression": "pk, revoked_at",
                }
            }
            for _ in range(1 + RESENDS):
                response = self._calls.call(
                    "checking the mirror for revoked codes",
                    partial(self._client.batch_get_item, RequestItems=pending),
                    deadline=deadline,
                )
                for item in response.get("Responses", {}).get(self._table, []):
                    if float(item["revoked_at"]["N"]) >= since:
                        revoked.append(keys.code_of_partition(item["pk"]["S"]))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise TableUnavailable(detail="checking the mirror: DynamoDB kept refusing")
        return revoked

    def _guild_item(self, guild_id: str, deadline: Deadline) -> dict[str, Any] | None:
        what = f"reading the listing of guild {guild_id}"
        return self._item(keys.guild_listing_key(guild_id), deadline, consistent=True, what=what)

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


def _record(fields: dict[str, dict[str, Any]]) -> GuildRecord:
    def number(name: str) -> float | None:
        value = fields.get(name)
        return float(value["N"]) if value and "N" in value else None

    counts = fields.get("counts", {}).get("M")
    vanity = fields.get("vanity", {}).get("S")
    return GuildRecord(
        refreshed_at=number("refreshed"),
        unreadable_until=number("unreadable"),
        vanity=vanity,
        counts={name: int(n["N"]) for name, n in counts.items()} if counts else None,
        counts_at=number("counts_at"),
        events_at=number("events_at"),
        vanity_at=number("vanity_at"),
        lasting=fields.get("lasting", {}).get("S"),
    )


def _item(invite: MirroredInvite, now: float) -> dict[str, Any]:
    item = keys.listed_key(invite.code) | {
        "guild_id": {"S": invite.guild_id},
        "body": {"S": invite.body},
        "listed_at": {"N": repr(now)},
    }
    if invite.expires_at is not None:  # an invite that never expires stays until unlisted
        item[keys.TTL_ATTRIBUTE] = {"N": str(invite.expires_at)}
    return item
