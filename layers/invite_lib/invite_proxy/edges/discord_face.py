"""The proxy as Discord's own `GET /api/v10/invites/{code}` answers: for Discord's libraries.

A library pointed at the proxy's base URL parses what it parses from Discord: the
invite object as it is; errors as `{"code": ..., "message": ...}` with Discord's
codes (10006 for an unknown invite, 50035 for a bad query); and every "not now"
the proxy says (its rate limits, a caller's spent share, the lookup budget, a
fetch under way) as Discord's own 429, whose body carries `retry_after` and
`global`, with the headers libraries read. Statuses other than those come from
the one map (http_responses.status_for), in Discord's body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from invite_proxy.domain.errors import (
    BudgetExhausted,
    CallerShareExhausted,
    DiscordRateLimited,
    InvalidInput,
    InviteProxyError,
    LookupInProgress,
    UnknownInvite,
)
from invite_proxy.domain.inputs import InviteQuery
from invite_proxy.edges.http_responses import JSON, Response, etag_matches, status_for
from invite_proxy.services.lookup import CacheStatus, LookupResult

UNKNOWN_INVITE = 10006
INVALID_FORM_BODY = 50035
# What the proxy answers "not now" with: to a Discord library, a rate limit to wait out.
_NOT_NOW = (DiscordRateLimited, CallerShareExhausted, BudgetExhausted, LookupInProgress)
# A proxy names itself in Via (RFC 9110); discord.py takes a 429 without one for
# Cloudflare's ban, and raises instead of waiting.
VIA = "1.1 invite-proxy"


# Discord's own error codes for a query value it cannot read, by parameter.
_TYPE_ERRORS = {
    "with_counts": ("BOOLEAN_TYPE_COERCE", "is not a valid boolean"),
    "guild_scheduled_event_id": ("NUMBER_TYPE_COERCE", "is not snowflake"),
}


class InvalidFormBody(InvalidInput):
    """Discord's 50035, naming each parameter it could not read."""

    def __init__(self, errors: dict[str, object] | None = None) -> None:
        self.errors = errors or {}
        super().__init__("Invalid Form Body", detail=", ".join(self.errors) or None)


def query_of(code: str, params: Mapping[str, str] | None) -> InviteQuery:
    """The lookup a Discord library asks for, judged as Discord judges it: a code that
    cannot be one is an unknown invite, and each unreadable parameter is named."""
    try:
        InviteQuery.parse(code, None)
    except InvalidInput:
        raise UnknownInvite(detail="not an invite code") from None
    errors: dict[str, object] = {}
    for name, (error_code, says) in _TYPE_ERRORS.items():
        value = (params or {}).get(name)
        if value is None:
            continue
        try:
            InviteQuery.parse(code, {name: value})
        except InvalidInput:
            message = f"Value {json.dumps(value)} {says}."
            errors[name] = {"_errors": [{"code": error_code, "message": message}]}
    if errors:
        raise InvalidFormBody(errors)
    return InviteQuery.parse(code, dict(params or {}))


def _body(code: int, message: str, **more: object) -> str:
    return json.dumps({"message": message, "code": code, **more})


def invite_response(result: LookupResult, if_none_match: str | None) -> Response:
    """A lookup's result, as Discord answers it (its cache headers are the proxy's own)."""
    entry = result.entry
    headers = {"X-Cache": result.cache_status.value, "Vary": "Origin"}
    if result.cache_status is CacheStatus.STALE:
        headers["Cache-Control"] = "public, max-age=0, must-revalidate"
    else:
        headers["Cache-Control"] = f"public, max-age={result.fresh_for}"
    if not result.found:
        return Response(404, _body(UNKNOWN_INVITE, "Unknown Invite"), headers)
    headers["ETag"] = entry.etag
    if etag_matches(if_none_match, entry.etag):
        return Response(304, "", headers, content_type=None)
    return Response(200, entry.body, headers)


def error_response(exc: InviteProxyError) -> Response:
    headers = {"Cache-Control": "no-store"}
    if isinstance(exc, UnknownInvite):
        return Response(404, _body(UNKNOWN_INVITE, "Unknown Invite"), headers)
    if isinstance(exc, InvalidInput):
        errors = exc.errors if isinstance(exc, InvalidFormBody) else {}
        return Response(400, _body(INVALID_FORM_BODY, "Invalid Form Body", errors=errors), headers)
    if isinstance(exc, _NOT_NOW):
        return rate_limited(exc.retry_after or 1.0)
    # A fetch that failed a moment ago (Discord failing) is Discord's 503, not a rate limit.
    status = status_for(exc)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return Response(status, _body(0, f"{status}: {exc.public_message}"), headers)


def rate_limited(retry_after: float) -> Response:
    """Discord's 429, as libraries read it: the body's `retry_after` (seconds, a float),
    `global` false, and the headers of a shared (not a per-bot) limit."""
    wait = round(max(retry_after, 0.001), 3)
    headers = {
        "Cache-Control": "no-store",
        "Retry-After": str(max(1, math.ceil(wait))),
        "X-RateLimit-Scope": "shared",
        "Via": VIA,
    }
    body = _body(0, "You are being rate limited.", retry_after=wait, **{"global": False})
    return Response(429, body, headers, content_type=JSON)
