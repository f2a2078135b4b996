"""Discord calls made under the fleet's guard: revocations and rule runs, not public lookups.

Every call first asks the guard (global, Cloudflare and token blocks, the
per-second rate, the route's bucket) and then tells it what Discord answered.
A refusal surfaces as the error Discord would have sent, without a request:
the DELETE answers 429 or 503 with Retry-After, and a rule run waits or stops
as it would after a real 429. Public lookups go through the lookup service,
which also spends the lookup budget and retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from invite_proxy.discord_client import vanity_code_of
from invite_proxy.errors import InviteProxyError
from invite_proxy.upstream_guard import INVITES_BUCKET, UpstreamGuard

if TYPE_CHECKING:
    from invite_proxy.discord_client import DiscordClient, DiscordResponse

# Our names for Discord's buckets; the guard tracks each apart. Guild routes are
# limited per guild (the guild id is a major parameter), so their buckets are too.
DELETE_BUCKET = "bucket:invites-delete"


def guild_bucket(route: str, guild_id: str) -> str:
    return f"bucket:{route}:{guild_id}"


class GuardedDiscord:
    def __init__(self, client: DiscordClient, guard: UpstreamGuard) -> None:
        self._client = client
        self._guard = guard

    def delete_invite(self, code: str, reason: str | None) -> DiscordResponse:
        return self._call(DELETE_BUCKET, lambda: self._client.delete_invite(code, reason))

    def get_invite(self, code: str, params: Mapping[str, str]) -> DiscordResponse:
        return self._call(INVITES_BUCKET, lambda: self._client.get_invite(code, params))

    def list_guild_invites(self, guild_id: str) -> DiscordResponse:
        bucket = guild_bucket("guild-invites", guild_id)
        return self._call(bucket, lambda: self._client.list_guild_invites(guild_id))

    def guild_vanity_code(self, guild_id: str) -> str | None:
        bucket = guild_bucket("guild-vanity", guild_id)
        return vanity_code_of(self._call(bucket, lambda: self._client.guild_vanity_url(guild_id)))

    def _call(self, bucket: str, call: Callable[[], DiscordResponse]) -> DiscordResponse:
        self._guard.admit(bucket)
        try:
            response = call()
        except InviteProxyError as exc:
            self._guard.observe_error(exc, bucket)
            raise
        self._guard.observe_headers(response.headers, bucket)
        return response
