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
"""

from __future__ import annotations

import math
from typing import Any

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import Refused, TableAdapter
from invite_proxy.domain.deadline import NO_DEADLINE, Deadline
from invite_proxy.domain.leases import HeldElsewhere, Lease

# Expired leases are dead already (every check compares lease_until); the TTL only tidies up.
_TIDY_AFTER_SECONDS = 600


class DynamoDBLeases(TableAdapter):
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
        item = keys.lease_key(code, variant) | {
            "owner": {"S": self._id},
            "lease_until": {"N": repr(until)},
            keys.TTL_ATTRIBUTE: {"N": str(math.ceil(until) + _TIDY_AFTER_SECONDS)},
        }
        taken = self._calls.write_if(
            f"taking the lease on {code!r}",
            lambda: self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk) OR lease_until < :now",
                ExpressionAttributeValues={":now": {"N": repr(now)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
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
        values = {
            ":owner": {"S": lease.owner},
            ":until": {"N": repr(until)},
            ":ttl": {"N": str(math.ceil(until) + _TIDY_AFTER_SECONDS)},
        }
        update = "SET lease_until = :until, #ttl = :ttl"
        if failed is not None:
            update += ", failed = :failed"
            values[":failed"] = {"S": failed}
        self._calls.write_if(  # refused: not ours any more, it ran out or a revocation cleared it
            f"settling the lease on {lease.code!r}",
            lambda: self._client.update_item(
                TableName=self._table,
                Key=keys.lease_key(lease.code, lease.variant),
                UpdateExpression=update,
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner", "#ttl": keys.TTL_ATTRIBUTE},
                ExpressionAttributeValues=values,
            ),
            deadline=deadline,
        )


def _held(item: dict[str, Any], now: float) -> HeldElsewhere:
    try:
        until = float(item["lease_until"]["N"])
    except (KeyError, ValueError):
        until = now
    failed = item.get("failed", {}).get("S")
    return HeldElsewhere(until=until, failed=failed if isinstance(failed, str) else None)
