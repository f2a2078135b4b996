"""Adapter: guild icons kept in the table, one item per icon file, by its hash.

An icon's hash names its bytes for good, so an item is never updated: written once,
read by every instance, and dropped by its ``ttl`` (30 days after the fetch; the next
instance that needs it fetches it again).
"""

from __future__ import annotations

import math
from functools import partial

from invite_proxy.adapters.dynamodb import keys
from invite_proxy.adapters.dynamodb.calls import TableAdapter
from invite_proxy.domain.deadline import Deadline


class DynamoDBIcons(TableAdapter):
    def get(self, guild_id: str, file_name: str, now: float, deadline: Deadline) -> bytes | None:
        item = self._item(keys.icon_key(guild_id, file_name), deadline)
        if item is None or int(item[keys.TTL_ATTRIBUTE]["N"]) <= now:
            return None
        return bytes(item["data"]["B"])

    def put(
        self, guild_id: str, file_name: str, data: bytes, until: float, deadline: Deadline
    ) -> None:
        item = keys.icon_key(guild_id, file_name) | {
            "data": {"B": data},
            keys.TTL_ATTRIBUTE: {"N": str(math.ceil(until))},
        }
        self._calls.call(
            "PutItem",
            partial(self._client.put_item, TableName=self._table, Item=item),
            deadline=deadline,
        )
