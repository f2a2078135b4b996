"""The one road to Discord: every call goes through the fleet's guard, and is measured.

Public lookups, admin DELETEs and every call a rule run makes (listing, vanity
code, named-code lookup) come through here: the guard admits the call (blocks,
rate, bucket and, for public lookups, the budget) within the caller's deadline,
the raw client sends it, and the guard records what Discord answered. A refusal
surfaces as the error Discord would have sent, without a request. Only the
webhook post goes around it: webhooks are limited per webhook, not per bot.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from invite_proxy import observability as obs
from invite_proxy.adapters.discord.client import encode_audit_reason
from invite_proxy.adapters.discord.routes import Route
from invite_proxy.domain.errors import DiscordError, InviteProxyError, UnknownInvite
from invite_proxy.domain.payloads import vanity_code_of_url

if TYPE_CHECKING:
    from invite_proxy.domain.deadline import Deadline
    from invite_proxy.domain.guard import Admission, Admitted, Caller, UpstreamGuard
    from invite_proxy.domain.payloads import DiscordResponse


class RawDiscord(Protocol):
    """The unguarded client (discord/client.py), or a test's stand-in for it."""

    def credentials(self, deadline: Deadline) -> None: ...

    def request(
        self,
        route: Route,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        deadline: Deadline,
    ) -> DiscordResponse: ...


class GuardedDiscord:
    def __init__(self, client: RawDiscord, guard: UpstreamGuard) -> None:
        self._client = client
        self._guard = guard

    def lookup_invite(
        self,
        code: str,
        params: Mapping[str, str],
        *,
        deadline: Deadline,
        call_deadline: Deadline,
        caller: Caller = None,
        admitted: Admitted | None = None,
        budget_spent: bool = False,
    ) -> DiscordResponse:
        """A public lookup: it also spends the lookup budget, ``caller``'s share first,
        unless the lookup's claim took them (``budget_spent``), with the rest of the call's
        admission when ``admitted``.

        The call ends by the lookup's own deadline (``call_deadline``), which its fetch
        lease outlasts: no second instance calls Discord for the same key while this call
        may still be answered.
        """
        return self._call(
            Route.get_invite(code),
            deadline,
            call_deadline,
            params=params,
            spend_budget=not budget_spent,
            caller=caller,
            admitted=admitted,
        )

    def admission(self, caller: Caller, deadline: Deadline) -> Admission | None:
        """What a lookup's claim takes for its call (domain/guard.py): every lookup shares
        one bucket, whatever its code. No token, no admission: a call that cannot be made
        takes nothing from the fleet."""
        self._credentials(deadline)
        return self._guard.admission(Route.get_invite("-").bucket, caller)

    def _credentials(self, deadline: Deadline) -> None:
        try:
            self._client.credentials(deadline)
        except InviteProxyError as exc:
            _failed(exc)
            raise

    def get_invite(self, code: str, *, deadline: Deadline) -> DiscordResponse:
        """A rule run's lookup of a named code: never held back by public traffic's budget."""
        return self._call(Route.get_invite(code), deadline)

    def delete_invite(
        self,
        code: str,
        reason: str | None,
        *,
        deadline: Deadline,
        call_deadline: Deadline | None = None,
    ) -> DiscordResponse:
        """Revoke an invite. Discord answers 200 with the invite it deleted.

        ``call_deadline``: the call gives up then, so what must follow it still has time.
        """
        headers = {"X-Audit-Log-Reason": encode_audit_reason(reason)} if reason else None
        return self._call(Route.delete_invite(code), deadline, call_deadline, headers=headers)

    def list_guild_invites(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse:
        """Every invite of a guild, with metadata (uses, max_age, ...). Needs Manage Guild."""
        return self._call(Route.guild_invites(guild_id), deadline)

    def guild_with_counts(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse:
        """The guild with its approximate member and presence counts (guild mode's counts:
        one call a guild, for every invite of it)."""
        return self._call(Route.guild(guild_id), deadline, params={"with_counts": "true"})

    def guild_events(self, guild_id: str, *, deadline: Deadline) -> DiscordResponse:
        """The guild's scheduled events (guild mode's events: one call a guild, whatever
        event ids lookups ask for)."""
        return self._call(Route.guild_events(guild_id), deadline)

    def guild_vanity_code(self, guild_id: str, *, deadline: Deadline) -> str | None:
        """The guild's vanity code; None when it has none."""
        return vanity_code_of_url(self._call(Route.guild_vanity_url(guild_id), deadline).payload)

    def _call(
        self,
        route: Route,
        deadline: Deadline,
        call_deadline: Deadline | None = None,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        spend_budget: bool = False,
        caller: Caller = None,
        admitted: Admitted | None = None,
    ) -> DiscordResponse:
        """The guard's table calls end by ``deadline``; its waits and the request itself by
        ``call_deadline``, when the caller needs the call over sooner."""
        call_deadline = call_deadline or deadline
        # No token, no call: a call that cannot be made spends no budget, rate or bucket.
        self._credentials(call_deadline)
        self._guard.admit(
            route.bucket,
            deadline,
            call_deadline=call_deadline,
            spend_budget=spend_budget,
            caller=caller,
            admitted=admitted,
        )
        obs.count("UpstreamCall")
        started = time.perf_counter()
        try:
            response = self._client.request(
                route, params=params, headers=headers, deadline=call_deadline
            )
        except UnknownInvite as exc:  # an answer, not a failure: it still spends the bucket
            _measure(started, exc.status)
            self._guard.observe_error(exc, route.bucket, deadline)
            raise
        except InviteProxyError as exc:
            _measure(started, exc.status)
            self._guard.observe_error(exc, route.bucket, deadline)
            _failed(exc)
            raise
        _measure(started, response.status)
        self._guard.observe(response.rate_limit, route.bucket, deadline)
        return response


def _failed(exc: InviteProxyError) -> None:
    """One metric and one line: Discord failed, or the call could not be made at all."""
    obs.count_by("UpstreamError", "ErrorKind", exc.code)
    what = "upstream error" if isinstance(exc, DiscordError) else "upstream call not made"
    obs.logger.warning(what, extra={"error_code": exc.code, "detail": exc.detail})


def _measure(started: float, status: int | None) -> None:
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    obs.logger.append_keys(upstream_status=status, upstream_latency_ms=latency_ms)
    obs.milliseconds("UpstreamLatency", latency_ms)
