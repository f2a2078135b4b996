"""Adapter: fetch leases in DynamoDB, so one instance in the fleet fetches a missing invite.

One item per invite code and response variant, beside the cached variant
(``keys.lease_key``):

    owner        the instance's random id
    lease_until  no one else fetches before this; a crashed holder's lease simply runs out
    failed       set when the holder gave up: the error code others answer with until
                 ``lease_until``, instead of each asking Discord again

After a fetch whose result was stored, the holder keeps the lease until that
result's ``fresh_until``: anyone who missed just before the write finds the
lease held, waits, and reads the result. A revocation deletes leases with the
variants they guarded.

A lease is taken by a conditional PutItem (``attribute_not_exists(pk) OR
lease_until < :now``) that returns the holder's item when it fails, so a
waiting instance learns who holds it, and until when, in the same call.

A lookup's lease is *claimed*: one TransactWriteItems that also checks the code's
unknown marker (a code Discord said lately does not exist needs no lease, and the marker
comes back as the answer) and takes the call's admission (domain/guard.py: no block in
force, the second's rate, the caller's share and the budget). All or none: a claim the
budget refuses takes nothing, so there is nothing to give back, and a miss costs its
read, this call, the bucket and the write that settles the lease (cache.py).

Two claims at the same moment that share an item (the budget's, the second's) may be
cancelled for it (a transaction conflict): the claim is tried again, and its last try
takes the lease alone, leaving the admission to the guard's calls one by one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import Refused, TableAdapter, TableCalls, pause
from invite_proxy.adapters.dynamodb.entries import entry_from_item
from invite_proxy.adapters.fleet_state.dynamodb import (
    allowance_take,
    block_check,
    full_at_of,
    second_take,
)
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.guard import Admitted
from invite_proxy.domain.leases import AlreadyKnown, Claim, HeldElsewhere, Lease, Withheld

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from invite_proxy.domain.guard import Admission

# Expired leases are dead already (every check compares lease_until); the TTL only tidies up.
_TIDY_AFTER_SECONDS = 600
# A wrong guess of an allowance's state, and a conflict or two, before the last try.
_CLAIM_TRIES = 4
# Each allowance's full_at as this instance last saw it, to pick the update it needs
# (whole or part spent: allowance_take); at most this many, the oldest dropped.
_SEEN_ALLOWANCES = 1024


class DynamoDBLeases(TableAdapter):
    def __init__(
        self, client: DynamoDBClient, table_name: str, calls: TableCalls | None = None
    ) -> None:
        super().__init__(client, table_name, calls)
        self._seen: OrderedDict[str, float] = OrderedDict()  # guesses, never trusted alone
        self._withheld: dict[str, float] = {}  # until when the table said each was spent

    def claim(
        self,
        code: str,
        variant: str,
        now: float,
        seconds: float,
        *,
        admission: Admission | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> Claim:
        """A lookup's lease, with its admission (see the module's doc) when given one."""
        until = now + seconds
        if admission is not None and (withheld := self._withheld_here(admission, now)):
            # Spent, as the table said lately: what the lease and the marker say still
            # comes first (a fetch under way is waited on, a known code answered).
            return self._peek(code, variant, now, deadline) or withheld
        marker: dict[str, Any] | None = {
            "TableName": self._table,
            "Key": keys.unknown_key(code),
            "ConditionExpression": "attribute_not_exists(pk) OR fresh_until <= :now",
            "ExpressionAttributeValues": {":now": {"N": repr(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        lease_put = self._lease_put(code, variant, now, until)
        for attempt in range(_CLAIM_TRIES):
            if attempt == _CLAIM_TRIES - 1:
                admission = None  # the last try: the lease alone, the guard takes the rest
            elif attempt:
                pause()  # another claim met on a shared item: let it finish
            taking = self._admission_items(admission, now) if admission else []
            items: list[Any] = [{"ConditionCheck": marker}] if marker else []
            lease_at = len(items)
            items += [{"Put": lease_put}, *(item for item, _ in taking)]
            claimed = self._calls.write_if(
                f"claiming {code!r}",
                partial(self._client.transact_write_items, TransactItems=items),
                deadline=deadline,
            )
            if not isinstance(claimed, Refused):
                if admission is None:
                    return Lease(code, variant, self._id, until)
                for _, name in taking:
                    if name is not None:  # taken: one call on from what was seen, at least
                        seen = max(self._seen.get(name, now), now)
                        self._saw(name, seen + admission.allowance(name).every)
                admitted = Admitted(admission, math.floor(now))
                return Lease(code, variant, self._id, until, admitted)
            if marker and claimed.refused(0):
                known = entry_from_item(code, variant, claimed.item_at(0))
                if known is not None:
                    return AlreadyKnown(replace(known, variant=variant))
                marker = None  # not a marker of ours: the lease alone decides
            if claimed.refused(lease_at):
                return _held(claimed.item_at(lease_at), now)
            for index, (_, name) in enumerate(taking, start=lease_at + 1):
                if not claimed.refused(index):
                    continue
                if name is None:  # a block in force, or the second spent: the guard waits
                    admission = None
                    continue
                assert admission is not None
                full_at = full_at_of(claimed.item_at(index), now)  # exact, as it stood
                self._saw(name, full_at)
                wait = admission.allowance(name).take(full_at, now)[1]
                if wait > 0:
                    if len(self._withheld) >= _SEEN_ALLOWANCES:
                        self._withheld.clear()  # a flood of callers: it is only a saving
                    self._withheld[name] = now + wait
                    return Withheld(name, wait)
            # Else an allowance moved on since it was seen (now known), or a conflict.
        return HeldElsewhere(until=now, failed=None)  # conflicts all along: look again soon

    def _admission_items(self, admission: Admission, now: float) -> list[tuple[Any, str | None]]:
        """The admission's part of a claim: each item, and the allowance it takes if one."""
        items: list[tuple[Any, str | None]] = []
        for name, allowance in admission.allowances:
            # Not seen here: the update that serves one never taken or part spent (a new
            # visitor's share, a busy fleet's budget), the commonest.
            take = allowance_take(self._table, name, now, allowance, self._seen.get(name))
            if isinstance(take, float):  # spent as last seen, yet not withheld: the table says
                take = allowance_take(self._table, name, now, allowance, None)
            items.append(({"Update": take}, name))
        items.append(({"ConditionCheck": block_check(self._table, admission.blocks, now)}, None))
        second = second_take(self._table, now, admission.calls_per_second)
        items.append(({"Update": second}, None))
        return items

    def _withheld_here(self, admission: Admission, now: float) -> Withheld | None:
        """An allowance the table refused lately, until the time it said: withheld without
        taking anything. (A give-back since may have brought that time forward by one
        lookup's worth; the refusal holds to what the table said.)"""
        for name, _ in admission.allowances:
            until = self._withheld.get(name, 0.0)
            if until > now:
                return Withheld(name, until - now)
            self._withheld.pop(name, None)
        return None

    def _peek(
        self, code: str, variant: str, now: float, deadline: Deadline
    ) -> HeldElsewhere | AlreadyKnown | None:
        """The code's marker and the variant's lease, read (one call): what a claim
        would answer before its admission."""
        wanted = [keys.unknown_key(code), keys.lease_key(code, variant)]
        read = self._calls.call(
            f"reading the claim on {code!r}",
            partial(
                self._client.batch_get_item,
                RequestItems={self._table: {"Keys": wanted, "ConsistentRead": True}},
            ),
            deadline=deadline,
        )
        for item in read.get("Responses", {}).get(self._table, []):
            if item["sk"]["S"] == keys.UNKNOWN_SORT_KEY:
                known = entry_from_item(code, variant, item)
                if known is not None and known.is_fresh(now):
                    return AlreadyKnown(replace(known, variant=variant))
            elif (held := _held(item, now)).until >= now:
                return held
        return None

    def _saw(self, name: str, full_at: float) -> None:
        """What this instance knows of an allowance's full_at, to guess its update by."""
        self._seen[name] = full_at
        self._seen.move_to_end(name)
        while len(self._seen) > _SEEN_ALLOWANCES:
            self._seen.popitem(last=False)

    def _lease_put(self, code: str, variant: str, now: float, until: float) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Item": keys.lease_key(code, variant)
            | {
                "owner": {"S": self._id},
                "lease_until": {"N": repr(until)},
                keys.TTL_ATTRIBUTE: {"N": str(math.ceil(until) + _TIDY_AFTER_SECONDS)},
            },
            "ConditionExpression": "attribute_not_exists(pk) OR lease_until < :now",
            "ExpressionAttributeValues": {":now": {"N": repr(now)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def acquire(
        self,
        code: str,
        variant: str,
        now: float,
        seconds: float,
        *,
        deadline: Deadline = NO_DEADLINE,
    ) -> Lease | HeldElsewhere:
        until = now + seconds
        taken = self._calls.write_if(
            f"taking the lease on {code!r}",
            partial(self._client.put_item, **self._lease_put(code, variant, now, until)),
            deadline=deadline,
        )
        if isinstance(taken, Refused):
            return _held(taken.item, now)
        return Lease(code, variant, self._id, until)

    def finish(
        self,
        lease: Lease,
        until: float,
        *,
        failed: str | None = None,
        deadline: Deadline = NO_DEADLINE,
    ) -> None:
        """Settle a lease we hold: no one fetches again before ``until``.

        After a stored result, ``until`` is the result's own freshness, so the
        lease is also what keeps the fleet to one fetch per freshness window.
        With ``failed``, others answer with that error code until ``until``.
        """
        self._calls.write_if(  # refused: not ours any more, it ran out or a revocation cleared it
            f"settling the lease on {lease.code!r}",
            partial(self._client.update_item, **settle_update(self._table, lease, until, failed)),
            deadline=deadline,
        )


def settle_update(
    table: str, lease: Lease, until: float, failed: str | None = None
) -> dict[str, Any]:
    """Settle a lease we hold (see finish): the update, alone or in a transaction."""
    values = {
        ":owner": {"S": lease.owner},
        ":until": {"N": repr(until)},
        ":ttl": {"N": str(math.ceil(until) + _TIDY_AFTER_SECONDS)},
    }
    update = "SET lease_until = :until, #ttl = :ttl"
    if failed is not None:
        update += ", failed = :failed"
        values[":failed"] = {"S": failed}
    return {
        "TableName": table,
        "Key": keys.lease_key(lease.code, lease.variant),
        "UpdateExpression": update,
        "ConditionExpression": "#owner = :owner",
        "ExpressionAttributeNames": {"#owner": "owner", "#ttl": keys.TTL_ATTRIBUTE},
        "ExpressionAttributeValues": values,
    }


def _held(item: dict[str, Any], now: float) -> HeldElsewhere:
    try:
        until = float(item["lease_until"]["N"])
    except (KeyError, ValueError):
        until = now
    failed = item.get("failed", {}).get("S")
    return HeldElsewhere(until=until, failed=failed if isinstance(failed, str) else None)
