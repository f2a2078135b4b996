"""An invite as a shields.io endpoint badge: `/invites/{code}/badge.json`.

shields.io's endpoint format (schemaVersion 1): a label, a message and a colour,
with Discord's logo. shields.io shows a badge only from a 200 whose body it can
read, so every answer is one: an unknown invite is a grey "invalid invite", and
a moment when the proxy cannot say ("not now", Discord failing) an error badge
that no cache keeps. `cacheSeconds` is the proxy's own freshness (shields.io
applies its own minimum on top).
"""

from __future__ import annotations

import json
from typing import Any

from invite_proxy.domain.errors import InvalidInput, InviteProxyError, UnknownInvite
from invite_proxy.edges.http_responses import Response
from invite_proxy.services.lookup import LookupResult

BLURPLE = "5865F2"  # Discord's brand colour


def _badge(message: str, color: str, **more: Any) -> str:
    badge = {
        "schemaVersion": 1,
        "label": "discord",
        "message": message,
        "color": color,
        "namedLogo": "discord",
        "logoColor": "white",
        **more,
    }
    return json.dumps(badge, ensure_ascii=False)


def compact_count(value: Any) -> str:
    """1234 as 1.2k, 12345678 as 12.3M: a badge is read at a glance."""
    if not isinstance(value, int):
        return "?"
    if value >= 999_950:  # rounds to 1.0M or more: never "1000k"
        return f"{value / 1_000_000:.1f}".removesuffix(".0") + "M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}".removesuffix(".0") + "k"
    return str(value)


def message_of(invite: dict[str, Any]) -> str:
    """Members and online, as Discord counts them approximately."""
    members = compact_count(invite.get("approximate_member_count"))
    online = compact_count(invite.get("approximate_presence_count"))
    return f"{members} members, {online} online"


def badge_response(result: LookupResult) -> Response:
    fresh = result.fresh_for
    headers = {"X-Cache": result.cache_status.value, "Cache-Control": f"public, max-age={fresh}"}
    if not result.found:
        body = _badge("invalid invite", "lightgrey", isError=True, cacheSeconds=fresh)
        return Response(200, body, headers)
    invite = json.loads(result.entry.body)
    return Response(200, _badge(message_of(invite), BLURPLE, cacheSeconds=fresh), headers)


def error_badge(exc: InviteProxyError) -> Response:
    """What shields.io can show when the proxy cannot say now: never kept by a cache."""
    if isinstance(exc, InvalidInput | UnknownInvite):
        # Nothing to show (a guild with no lasting invite, a code that cannot be one).
        return Response(200, _badge("invalid invite", "lightgrey", isError=True), {})
    body = _badge("unavailable", "lightgrey", isError=True)
    return Response(200, body, {"Cache-Control": "no-store"})
